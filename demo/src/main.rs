//! `fieldsync-demo`: runs the demo ([`fieldsync_demo::run`]) and prints
//! what happens, then the province report.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // The demo tells its own story; the server's request logs would drown it.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    match fieldsync_demo::run(|step| println!("· {step}")).await {
        Ok(summary) => {
            println!("\n{}", summary.report);
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
