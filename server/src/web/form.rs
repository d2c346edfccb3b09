//! Form bodies and query strings (`application/x-www-form-urlencoded`).

/// `application/x-www-form-urlencoded` pairs, from a body or a query.
#[derive(Debug, Default)]
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Form {
        Form(
            body.split(|b| *b == b'&')
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let mut kv = pair.splitn(2, |b| *b == b'=');
                    let key = decode(kv.next().unwrap_or_default());
                    let value = decode(kv.next().unwrap_or_default());
                    (key, value)
                })
                .collect(),
        )
    }

    pub fn query(query: Option<&str>) -> Form {
        Form::parse(query.unwrap_or_default().as_bytes())
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The first value of `key`, trimmed; empty when absent.
    pub fn text(&self, key: &str) -> &str {
        self.get(key).unwrap_or_default().trim()
    }

    /// Every value of `key`.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Decodes `+` and `%XX`; invalid UTF-8 is replaced, not refused.
fn decode(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < raw.len() => {
                let hex = std::str::from_utf8(&raw[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_vietnamese_and_repeated_keys() {
        let form = Form::parse(b"reason=s%E1%BB%91+li%E1%BB%87u&sub=a&sub=b&bad=%zz&end=%4");
        assert_eq!(form.get("reason"), Some("số liệu"));
        assert_eq!(form.all("sub").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(form.get("bad"), Some("%zz"));
        assert_eq!(form.get("end"), Some("%4"));
        assert_eq!(form.get("none"), None);
    }
}
