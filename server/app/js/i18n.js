// The app's words, Vietnamese first, English beside, in the plain language
// of a village surveyor.

const WORDS = {
  title: ['Báo cáo nông thôn mới', 'Rural development reports'],
  sync: ['Đồng bộ', 'Sync'],
  unsent: ['Chưa gửi:', 'Not sent yet:'],
  codeLabel: ['Mã đăng ký (người giám sát đưa cho bạn)', 'Enrollment code (from your supervisor)'],
  enrollSubmit: ['Đăng ký máy này', 'Enroll this device'],
  enrollTitle: ['Đăng ký máy', 'Enroll this device'],
  enrollHelp: ['Nhập mã mà người giám sát đưa cho bạn, hoặc quét mã QR. Chỉ cần có mạng lần này; sau đó ứng dụng làm việc không cần mạng.',
    'Type the code your supervisor gave you, or scan its QR code. You need a connection this once; after that the app works offline.'],
  reenrollTitle: ['Cần mã đăng ký mới', 'A new enrollment code is needed'],
  search: ['Tìm thôn', 'Find a village'],
  searchHint: ['ví dụ: phuc dong', 'e.g. phuc dong'],
  period: ['Kỳ báo cáo', 'Period'],
  myReports: ['Báo cáo trên máy này', 'Reports on this device'],
  export: ['Xuất các sửa đổi chưa gửi', 'Export unsent edits'],
  install: ['Cài vào màn hình chính', 'Install on the home screen'],
  back: ['← Danh sách thôn', '← Villages'],
  note: ['Ghi chú', 'Note'],
  gps: ['Lấy vị trí GPS', 'Get GPS position'],
  save: ['Lưu', 'Save'],
  saved: ['đã lưu trên máy', 'saved on this device'],
  nothingToSave: ['Không có gì thay đổi để lưu.', 'Nothing changed to save.'],
  langButton: ['English', 'Tiếng Việt'],
  noVillages: ['Không tìm thấy thôn nào.', 'No village found.'],
  noReports: ['Chưa có báo cáo nào trên máy.', 'No report on this device yet.'],
  who: ['Người khảo sát: {0}', 'Surveyor: {0}'],
  whereCommune: ['{0}, {1}', '{0}, {1}'],
  more: ['… và {0} thôn nữa; gõ tên để tìm.', '… and {0} more; type a name to search.'],
  // Sync status.
  idle: ['Chưa đồng bộ lần nào.', 'Not synced yet.'],
  syncing: ['Đang đồng bộ…', 'Syncing…'],
  pushing: ['Đang gửi {0}/{1} sửa đổi…', 'Sending {0}/{1} edits…'],
  pulling: ['Đang nhận dữ liệu từ máy chủ… ({0})', 'Receiving from the server… ({0})'],
  retrying: ['Máy chủ chưa trả lời, thử lại sau {0} giây…', 'No answer from the server, trying again in {0} s…'],
  ok: ['Đã đồng bộ lúc {0}.', 'Synced at {0}.'],
  okSummary: ['Đã đồng bộ lúc {0}: gửi {1}, nhận {2}.', 'Synced at {0}: sent {1}, received {2}.'],
  offline: ['Không có mạng. Các sửa đổi vẫn lưu trên máy và sẽ được gửi khi có mạng.', 'No connection. Your edits are kept on this device and will be sent when there is a connection.'],
  error: ['Chưa đồng bộ được: {0}. Các sửa đổi vẫn lưu trên máy.', 'Could not sync: {0}. Your edits are kept on this device.'],
  auth: ['Máy này cần mã đăng ký mới. Các sửa đổi vẫn lưu trên máy.', 'This device needs a new enrollment code. Your edits are kept on this device.'],
  reenrollReason: ['Máy chủ không nhận mã truy cập của máy này nữa (đã bị thu hồi hoặc hết hạn): {0}. {1} sửa đổi chưa gửi vẫn lưu trên máy. Xin người giám sát một mã mới cho {2}.',
    'The server no longer accepts this device\'s access (revoked or expired): {0}. {1} unsent edits are kept on this device. Ask your supervisor for a new code for {2}.'],
  // Enrollment errors.
  codeShape: ['Mã gồm 10 chữ cái và chữ số, ví dụ ABCDE-FGHJK.', 'A code is 10 letters and digits, e.g. ABCDE-FGHJK.'],
  codeRefused: ['Mã không đúng, đã dùng, đã hết hạn hoặc đã bị thu hồi. Xin người giám sát một mã mới.', 'The code is wrong, used, expired or revoked. Ask your supervisor for a new one.'],
  codeTooMany: ['Thử sai quá nhiều lần. Chờ một phút rồi thử lại.', 'Too many wrong tries. Wait a minute and try again.'],
  codeOtherUser: ['Mã này dành cho người khác, nhưng máy còn sửa đổi chưa gửi của {0}. Xin một mã cho {0}.', 'This code is for someone else, but the device holds unsent edits of {0}. Ask for a code for {0}.'],
  codeOffline: ['Không kết nối được máy chủ. Cần có mạng để đăng ký.', 'Cannot reach the server. Enrolling needs a connection.'],
  codeOther: ['Không đăng ký được: {0}', 'Could not enroll: {0}'],
  enrolling: ['Đang đăng ký…', 'Enrolling…'],
  // Field and report states.
  st_local: ['đã lưu trên máy', 'saved on this device'],
  st_sending: ['đang gửi', 'sending'],
  st_synced: ['đã đồng bộ', 'synced'],
  st_conflict: ['xung đột', 'in conflict'],
  st_refused: ['bị từ chối', 'refused'],
  st_locked: ['đã duyệt, khóa', 'approved, locked'],
  st_returned: ['bị trả lại', 'returned'],
  st_rejected: ['báo cáo bị từ chối', 'report rejected'],
  st_approved: ['đã duyệt', 'approved'],
  st_accepted: ['đã được chấp nhận', 'accepted'],
  st_submitted: ['đã gửi, chờ duyệt', 'submitted, waiting for review'],
  st_none: ['chưa có gì', 'nothing yet'],
  conflictWith: ['xung đột: {0}', 'in conflict: {0}'],
  candidate: ['{0} ({1}, {2})', '{0} ({1}, {2})'],
  refusedWhy: ['bị từ chối ({0}): {1}', 'refused ({0}): {1}'],
  rv_submitted: ['Đã gửi, chờ xã duyệt.', 'Submitted, waiting for the commune.'],
  rv_returned: ['Bị trả lại để sửa: {0} — {1}, {2}. Sửa và lưu để gửi lại.', 'Returned for changes: {0} — {1}, {2}. Edit and save to submit again.'],
  rv_rejected: ['Báo cáo bị từ chối: {0} — {1}, {2}. Sửa và lưu để gửi lại.', 'Report rejected: {0} — {1}, {2}. Edit and save to submit again.'],
  rv_approved: ['Xã đã duyệt — {1}, {2}.', 'Approved by the commune — {1}, {2}.'],
  rv_accepted: ['Đã được chấp nhận (cấp trên xã) — {1}, {2}.', 'Accepted — {1}, {2}.'],
  lockedWhy: ['Báo cáo đã được duyệt nên không sửa được nữa. Nếu cần sửa, xin người giám sát mở lại.', 'This report is approved, so it cannot be changed. Ask your supervisor to reopen it if it needs changes.'],
  // GPS and storage.
  gpsWorking: ['Đang lấy vị trí…', 'Getting the position…'],
  gpsGot: ['Vị trí: {0}, {1} (sai số khoảng {2} m). Bấm Lưu để lưu.', 'Position: {0}, {1} (within about {2} m). Press Save to keep it.'],
  gpsShown: ['Vị trí: {0}, {1}', 'Position: {0}, {1}'],
  gpsRefused: ['Không lấy được vị trí ({0}). Không sao, có thể bỏ qua.', 'No position ({0}). That is fine; it is optional.'],
  gpsNone: ['Máy này không có GPS.', 'This device has no GPS.'],
  storagePersistent: ['Bộ nhớ: bền vững (trình duyệt sẽ không tự xóa) · đã dùng {0}', 'Storage: persistent (the browser will not clear it) · {0} used'],
  storageNot: ['Bộ nhớ: chưa bền vững (hãy cài ứng dụng vào màn hình chính) · đã dùng {0}', 'Storage: not persistent (install the app on the home screen) · {0} used'],
  exported: ['Đã xuất {0} sửa đổi chưa gửi.', 'Exported {0} unsent edits.'],
  empty: ['(trống)', '(empty)'],
  periodShape: ['Viết kỳ báo cáo là năm (2026), quý (2026-Q3) hoặc tháng (2026-07).', 'Write the period as a year (2026), a quarter (2026-Q3) or a month (2026-07).'],
};

/** The server's most common refusals, said in Vietnamese too. */
const REASONS = [
  [/^this report is approved and locked/, 'Báo cáo đã được xã duyệt nên bị khóa; xin người giám sát mở lại.'],
  [/^this report is accepted by the district and locked/, 'Báo cáo đã được huyện chấp nhận nên bị khóa; xin huyện mở lại.'],
  [/^this report is accepted by the province and locked/, 'Báo cáo đã được tỉnh chấp nhận nên bị khóa; xin tỉnh mở lại.'],
  [/^period \S+ is closed for this area/, 'Kỳ báo cáo này đã đóng cho địa bàn; sửa đổi vẫn lưu trên máy cho đến khi tỉnh mở lại.'],
  [/^permission denied/, 'Bạn không có quyền ghi cho thôn này.'],
];

/** A reason the server gave, in the app's language (its own words kept after). */
export function reason(text) {
  if (lang !== 'vi') return text;
  const known = REASONS.find(([re]) => re.test(text));
  return known ? `${known[1]} (${text})` : text;
}

let lang = 'vi';

export function setLang(l) { lang = l === 'en' ? 'en' : 'vi'; document.documentElement.lang = lang; }
export const getLang = () => lang;

/** The words for `key` in the current language, `{0}`, `{1}`… filled from `args`. */
export function t(key, ...args) {
  const w = WORDS[key];
  const text = w ? w[lang === 'en' ? 1 : 0] : key;
  return text.replace(/\{(\d)\}/g, (_, i) => String(args[+i] ?? ''));
}

/** A decimal string as the surveyor writes it: 1,5 in Vietnamese. */
export function number(amount) {
  if (amount === undefined || amount === null) return '';
  return lang === 'vi' ? String(amount).replace('.', ',') : String(amount);
}

/** A time, e.g. "14:05 02/12/2026". */
export function when(ms) {
  if (!ms) return '';
  const d = new Date(Number(ms));
  const p = (n) => String(n).padStart(2, '0');
  const time = `${p(d.getHours())}:${p(d.getMinutes())}`;
  return lang === 'vi' ? `${time} ${p(d.getDate())}/${p(d.getMonth() + 1)}/${d.getFullYear()}` : `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${time}`;
}

/** Bytes as "12 KB". */
export function bytes(n) {
  if (!n) return '0 KB';
  if (n < 1024 * 1024) return `${Math.max(1, Math.round(n / 1024))} KB`;
  return `${number((n / 1024 / 1024).toFixed(1))} MB`;
}

/** Fills every element's `data-t` words and `data-tp` placeholder. */
export function translate(root = document) {
  for (const e of root.querySelectorAll('[data-t]')) e.textContent = t(e.dataset.t);
  for (const e of root.querySelectorAll('[data-tp]')) e.placeholder = t(e.dataset.tp);
}
