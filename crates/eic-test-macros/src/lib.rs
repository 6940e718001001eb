//! `#[async_test]`: the runtime every integration test of eic-ssh runs on,
//! said once.
//!
//! The tests drive the simulator, a real sshd and the `eic-ssh` binary at
//! the same time, so each needs a multi-thread tokio runtime with two
//! workers (the machines that run them have two cores). Written out, that
//! is `#[tokio::test(flavor = "multi_thread", worker_threads = 2)]` on every
//! test; with this crate it is `#[async_test]`, and a change to the set-up
//! is made here, once.

use proc_macro::TokenStream;

/// The attribute tokio's test macro takes for every integration test.
const RUNTIME: &str = r#"#[::tokio::test(flavor = "multi_thread", worker_threads = 2)]"#;

/// Runs an `async fn` test on a two-worker multi-thread tokio runtime.
///
/// ```ignore
/// #[async_test]
/// async fn runs_a_command() {
///     let f = Fixture::new().await;
///     f.run(&[&f.target(), "--", "true"], b"").await.assert_success();
/// }
/// ```
#[proc_macro_attribute]
pub fn async_test(args: TokenStream, item: TokenStream) -> TokenStream {
    if !args.is_empty() {
        return error("#[async_test] takes no arguments");
    }
    match RUNTIME.parse::<TokenStream>() {
        Ok(mut out) => {
            out.extend(item);
            out
        }
        Err(e) => error(&format!("#[async_test]: {e}")),
    }
}

/// A `compile_error!` with `message`, where the attribute was used.
fn error(message: &str) -> TokenStream {
    format!("::core::compile_error!({message:?});")
        .parse()
        .unwrap_or_default()
}
