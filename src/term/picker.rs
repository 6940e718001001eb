//! The interactive instance picker: a list to filter by typing (fuzzy),
//! Enter to choose, Esc to cancel. Only ever shown on a terminal.

use std::io::IsTerminal;

use crate::error::Error;

/// Whether a picker can ask: stdin and stderr are both terminals (the
/// picker draws on stderr, so stdout stays the command's).
pub fn available() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Let the user choose one of `lines` (already aligned, see
/// [`crate::term::table`]) under `header`. Returns the chosen index;
/// Esc or Ctrl-C is [`Error::Cancelled`].
pub async fn pick(prompt: String, header: String, lines: Vec<String>) -> Result<usize, Error> {
    // The prompt blocks on terminal input: keep it off the runtime's one
    // thread, so the rest of the program (signals, timers) keeps running.
    let chosen = tokio::task::spawn_blocking(move || {
        let options: Vec<Choice> = lines
            .into_iter()
            .enumerate()
            .map(|(index, line)| Choice { index, line })
            .collect();
        let help = format!("{header}   (type to filter, Enter to choose, Esc to cancel)");
        let page_size = crossterm::terminal::size()
            .map(|(_, rows)| usize::from(rows).saturating_sub(4).clamp(3, 20))
            .unwrap_or(10);
        // Colour as everything else: --color, then NO_COLOR.
        let render = match crate::term::color::stderr() {
            true => inquire::ui::RenderConfig::default_colored(),
            false => inquire::ui::RenderConfig::empty(),
        };
        inquire::Select::new(&prompt, options)
            .with_render_config(render)
            .with_help_message(&help)
            .with_page_size(page_size)
            .prompt()
    })
    .await
    .map_err(|e| Error::Internal(format!("the picker stopped: {e}")))?;
    match chosen {
        Ok(c) => Ok(c.index),
        Err(
            inquire::InquireError::OperationCanceled | inquire::InquireError::OperationInterrupted,
        ) => Err(Error::Cancelled),
        Err(inquire::InquireError::IO(e)) => Err(Error::Io(e)),
        Err(e) => Err(Error::Internal(format!("the picker failed: {e}"))),
    }
}

struct Choice {
    index: usize,
    line: String,
}

impl std::fmt::Display for Choice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.line)
    }
}
