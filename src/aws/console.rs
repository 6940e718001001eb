//! The instance's console output (`ec2:GetConsoleOutput`).

use base64::Engine;

use crate::error::Error;

/// Fetch the console (the latest output where the instance supports it,
/// else the boot-time capture), as text.
pub async fn output(ec2: &aws_sdk_ec2::Client, instance_id: &str) -> Result<String, Error> {
    let latest = ec2
        .get_console_output()
        .instance_id(instance_id)
        .latest(true)
        .send()
        .await;
    let out = match latest {
        Ok(out) => out,
        Err(e) => {
            let err = console_error(crate::aws::errors::api_error("GetConsoleOutput", e));
            // Older (non-Nitro) instances cannot give the latest output.
            match &err {
                Error::Api { code, .. }
                    if code == "UnsupportedOperation" || code.starts_with("InvalidParameter") =>
                {
                    ec2.get_console_output()
                        .instance_id(instance_id)
                        .send()
                        .await
                        .map_err(|e| {
                            console_error(crate::aws::errors::api_error("GetConsoleOutput", e))
                        })?
                }
                _ => return Err(err),
            }
        }
    };
    let text = out
        .output()
        .and_then(|b64| {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
        })
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    Ok(text)
}

fn console_error(e: Error) -> Error {
    match e {
        Error::Api { code, message, .. }
            if code == "UnauthorizedOperation" || code.contains("AccessDenied") =>
        {
            Error::ConsoleDenied { code, message }
        }
        other => other,
    }
}
