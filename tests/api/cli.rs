//! The terminal client against a running mxgate, as a person runs it from a shell: in a
//! pseudo-terminal, the token typed at a prompt that does not show it, the QR code read off
//! the terminal's half blocks as a phone's camera would read it.

use std::io::{Read, Write};
use std::process::Stdio;
use std::time::Duration;

use image::{GrayImage, Luma};
use portable_pty::{Child, CommandBuilder, ExitStatus, MasterPty, PtySize, native_pty_system};
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::common::{TestApp, expect};

const DEVICE: &str = "237600000151";
const PAIRED: &str = "237600000152";
const CONTACT: &str = "237698700151";

/// How long the program may take to print the next thing, or to end.
const PATIENCE: Duration = Duration::from_secs(60);

/// `mxgate <args>` in a pseudo-terminal of its own, with `MXGATE_URL` pointing at `app`
/// and no `MXGATE_TOKEN`, so it asks for the token.
struct Terminal {
    child: Box<dyn Child + Send + Sync>,
    master: Box<dyn MasterPty + Send>,
    keyboard: Box<dyn Write + Send>,
    output: mpsc::UnboundedReceiver<Vec<u8>>,
    seen: Vec<u8>,
}

impl Terminal {
    fn run(app: &TestApp, args: &[&str]) -> Self {
        let size = PtySize { rows: 60, cols: 160, pixel_width: 0, pixel_height: 0 };
        let pty = native_pty_system().openpty(size).expect("a pseudo-terminal");
        assert!(echoes(pty.master.as_ref()), "a new terminal echoes, so `type_token` can see it stop");
        let mut command = CommandBuilder::new(env!("CARGO_BIN_EXE_mxgate"));
        command.args(args);
        command.env("MXGATE_URL", &app.base);
        command.env_remove("MXGATE_TOKEN");
        // Away from any `.env`.
        command.cwd(std::env::temp_dir());
        let child = pty.slave.spawn_command(command).expect("mxgate starts");
        // The program then holds the only other end: the output ends when it exits.
        drop(pty.slave);
        let mut reader = pty.master.try_clone_reader().unwrap();
        let keyboard = pty.master.take_writer().unwrap();
        let (sender, output) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            let mut buffer = [0; 4096];
            // Linux answers EIO once the program has closed the terminal: the end, as Ok(0) is.
            while let Ok(read @ 1..) = reader.read(&mut buffer) {
                if sender.send(buffer[..read].to_vec()).is_err() {
                    break;
                }
            }
        });
        Self { child, master: pty.master, keyboard, output, seen: Vec::new() }
    }

    /// Everything the program printed so far, escape sequences and all.
    fn printed(&self) -> String {
        String::from_utf8_lossy(&self.seen).into_owned()
    }

    /// Reads the output until `find` finds what it looks for in all of it.
    async fn wait_for<T>(&mut self, what: &str, mut find: impl FnMut(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(found) = find(&self.printed()) {
                return found;
            }
            match tokio::time::timeout_at(deadline, self.output.recv()).await {
                Ok(Some(chunk)) => self.seen.extend(chunk),
                Ok(None) => panic!("mxgate ended before {what}; it printed:\n{}", self.printed()),
                Err(_) => panic!("no {what} within {PATIENCE:?}; mxgate printed:\n{}", self.printed()),
            }
        }
    }

    /// Types `token` at the prompt, once the terminal no longer echoes what is typed.
    async fn type_token(&mut self, token: &str) {
        self.wait_for("the token prompt", |printed| printed.contains("token").then_some(())).await;
        // The prompt is printed a moment before echo is turned off; typing in between would
        // show the token whatever the program does.
        let deadline = Instant::now() + PATIENCE;
        while echoes(self.master.as_ref()) {
            assert!(Instant::now() < deadline, "the terminal still echoes after the token prompt");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        write!(self.keyboard, "{token}\r").unwrap();
        self.keyboard.flush().unwrap();
    }

    /// Reads the output to its end, then the exit status.
    async fn finish(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match tokio::time::timeout_at(deadline, self.output.recv()).await {
                Ok(Some(chunk)) => self.seen.extend(chunk),
                Ok(None) => break,
                Err(_) => panic!("mxgate did not end within {PATIENCE:?}; it printed:\n{}", self.printed()),
            }
        }
        // It closed the terminal: it has exited or is about to.
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "mxgate closed its terminal but did not exit");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn echoes(terminal: &dyn MasterPty) -> bool {
    let settings = terminal.get_termios().expect("the terminal's settings");
    settings.local_flags.iter_names().any(|(name, _)| name == "ECHO")
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// What a person reads on the terminal, line by line: escape sequences (colours, clearing)
/// dropped, and only lines already ended, so none is read half printed.
fn lines(printed: &str) -> Vec<String> {
    let mut plain = String::new();
    let mut chars = printed.chars();
    while let Some(c) = chars.next() {
        match c {
            // CSI: ESC [ parameters… and one final byte in @..~.
            '\x1b' => {
                if chars.next() == Some('[') {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
            }
            '\r' => {}
            c => plain.push(c),
        }
    }
    let mut lines: Vec<String> = plain.split('\n').map(str::to_owned).collect();
    lines.pop();
    lines
}

fn is_qr_row(line: &str) -> bool {
    line.chars().count() >= 21 && line.chars().all(|c| matches!(c, '█' | '▀' | '▄' | ' '))
}

/// The QR codes drawn so far, oldest first: each block of half-block rows followed by the
/// line saying how to scan it, decoded.
fn codes_drawn(printed: &str) -> Vec<String> {
    let mut codes = Vec::new();
    let mut rows: Vec<String> = Vec::new();
    for line in lines(printed) {
        if is_qr_row(&line) {
            rows.push(line);
            continue;
        }
        if line.contains("Linked devices → Link a device") && !rows.is_empty() {
            codes.push(decode(&rows));
        }
        rows.clear();
    }
    codes
}

/// Turns half blocks back into modules (a character holds two, one above the other), draws
/// them 8 pixels a module, and reads the picture as a phone would.
fn decode(rows: &[String]) -> String {
    let halves = |c: char| match c {
        '█' => (true, true),
        '▀' => (true, false),
        '▄' => (false, true),
        _ => (false, false),
    };
    let modules: Vec<Vec<bool>> = rows
        .iter()
        .flat_map(|row| {
            let (top, bottom): (Vec<bool>, Vec<bool>) = row.chars().map(halves).unzip();
            [top, bottom]
        })
        .collect();
    const SCALE: u32 = 8;
    let (width, height) = (modules[0].len() as u32, modules.len() as u32);
    let picture = GrayImage::from_fn(width * SCALE, height * SCALE, |x, y| {
        let dark = modules[(y / SCALE) as usize].get((x / SCALE) as usize).copied().unwrap_or(false);
        Luma([if dark { 0 } else { 255 }])
    });
    let mut prepared = rqrr::PreparedImage::prepare(picture);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in {} rows of half blocks:\n{}", rows.len(), rows.join("\n"));
    grids[0].decode().expect("the drawn QR code decodes").1
}

async fn token(app: &TestApp) -> String {
    app.admin_token(false).await["token"].as_str().unwrap().to_owned()
}

/// `mxgate <args>` as a script runs it: no terminal, the token in `MXGATE_TOKEN`.
async fn scripted(app: &TestApp, token: &str, args: &[&str]) -> std::process::Output {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_mxgate"))
        .args(args)
        .env("MXGATE_URL", &app.base)
        .env("MXGATE_TOKEN", token)
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(PATIENCE, run).await.expect("mxgate ends").expect("mxgate runs")
}

#[tokio::test]
async fn a_person_links_a_phone_by_the_qr_code_drawn_in_the_terminal_then_sends_from_a_script() {
    let app = TestApp::start().await;
    let token = token(&app).await;

    let mut terminal = Terminal::run(&app, &["link"]);
    terminal.type_token(&token).await;
    // The phone scans the newest code on the screen; a code that rotated away meanwhile
    // (they live a second on the simulator) is refused, and the phone tries the next one.
    let mut drawn = 0;
    loop {
        let codes =
            terminal.wait_for("a new QR code", |printed| Some(codes_drawn(printed)).filter(|c| c.len() > drawn)).await;
        drawn = codes.len();
        let code = codes.last().unwrap();
        assert!(code.starts_with("2@"), "a WhatsApp login code: {code}");
        let scan = app.request(Method::POST, "/sim/qr/scan").json(&json!({ "phone": DEVICE, "code": code }));
        let status = scan.send().await.unwrap().status();
        if status == StatusCode::OK {
            break;
        }
        assert_eq!(status, StatusCode::CONFLICT, "only a code no longer showing is refused");
    }
    let status = terminal.finish().await;
    let printed = terminal.printed();
    assert!(status.success(), "mxgate link exits 0 once linked ({status:?}); it printed:\n{printed}");
    assert!(lines(&printed).iter().any(|line| line == DEVICE), "the device id on its own line:\n{printed}");
    assert!(!printed.contains(&token), "the token is never shown:\n{printed}");

    let devices = expect(app.bearer(Method::GET, "/api/v1/devices", &token), StatusCode::OK).await;
    assert_eq!(devices, json!([{ "platform": "wa", "device_id": DEVICE, "status": "connected" }]));

    let listed = scripted(&app, &token, &["devices"]).await;
    assert!(listed.status.success());
    assert_eq!(String::from_utf8_lossy(&listed.stdout).split_whitespace().collect::<Vec<_>>(), [DEVICE, "connected"]);

    // A file goes as multipart; its name's extension gives its type.
    let dir = tempfile::tempdir().unwrap();
    let menu = dir.path().join("menu.txt");
    std::fs::write(&menu, "Rice and beans\n").unwrap();
    let file = menu.to_str().unwrap();
    let args =
        ["send", "--device", DEVICE, "--to", CONTACT, "--to", "000111222333", "--text", "The menu", "--file", file];
    let sent = scripted(&app, &token, &args).await;
    let stdout = String::from_utf8_lossy(&sent.stdout);
    assert!(sent.status.success(), "one recipient was sent it: {stdout} {}", String::from_utf8_lossy(&sent.stderr));
    let results: Vec<Vec<&str>> = stdout.lines().map(|line| line.split_whitespace().take(2).collect()).collect();
    assert_eq!(results, [[CONTACT, "sent"], ["000111222333", "failed"]], "{stdout}");
    assert!(stdout.lines().nth(1).unwrap().ends_with("000111222333 is not on WhatsApp"), "{stdout}");
    let outbox = app.sim_outbox(DEVICE).await;
    let media = &outbox.last().unwrap()["media"];
    assert_eq!((media["file_name"].as_str(), media["mime_type"].as_str()), (Some("menu.txt"), Some("text/plain")));
    assert_eq!(outbox.last().unwrap()["text"], "The menu");

    let unsent = scripted(&app, &token, &["send", "--device", DEVICE, "--to", "000111222333", "--text", "Hello"]).await;
    assert_eq!(unsent.status.code(), Some(1), "no recipient was sent it");
}

#[tokio::test]
async fn a_person_links_a_phone_by_the_pairing_code_printed_in_the_terminal() {
    let app = TestApp::start().await;
    let token = token(&app).await;

    let mut terminal = Terminal::run(&app, &["link", "--phone", &format!("+{PAIRED}")]);
    terminal.type_token(&token).await;
    let code = terminal
        .wait_for("a pairing code", |printed| {
            lines(printed).iter().find_map(|line| line.strip_prefix("Pairing code: ").map(str::to_owned))
        })
        .await;
    assert!(code.len() == 8 && code.chars().all(|c| c.is_ascii_alphanumeric()), "8 characters: {code}");

    // The phone owner types the code on that phone.
    expect(app.request(Method::POST, "/sim/qr/scan").json(&json!({ "phone": PAIRED })), StatusCode::OK).await;
    let status = terminal.finish().await;
    let printed = terminal.printed();
    assert!(status.success(), "mxgate link exits 0 once linked ({status:?}); it printed:\n{printed}");
    assert!(lines(&printed).iter().any(|line| line == PAIRED), "the device id on its own line:\n{printed}");
    assert!(!printed.contains(&token), "the token is never shown:\n{printed}");
}

#[tokio::test]
async fn a_bad_token_is_refused_in_the_apis_words_and_never_shown() {
    let app = TestApp::start().await;
    let bad = format!("mt_{}", mxgate::secret::random_string(32));
    let refusal = expect(app.bearer(Method::GET, "/api/v1/devices", &bad), StatusCode::UNAUTHORIZED).await;
    let message = refusal["message"].as_str().unwrap();

    let listed = scripted(&app, &bad, &["devices"]).await;
    let (stdout, stderr) = (String::from_utf8_lossy(&listed.stdout), String::from_utf8_lossy(&listed.stderr));
    assert!(!listed.status.success());
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(message), "the API's message `{message}`: {stderr}");
    assert!(!stderr.contains(&bad) && !stdout.contains(&bad), "the token is never shown: {stderr}");
}
