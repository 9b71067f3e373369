//! A deliberately dumb HTTP/1.1 client over a plain TCP socket, for hostile requests: the
//! request target, the headers and the body go out byte for byte (no URL normalisation, no
//! percent-decoding, no content-type fixing), and the answer is read back whole. Cookies are
//! the caller's business.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The value of a cookie set by this response.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers_named("set-cookie").find_map(|v| {
            let first = v.split(';').next()?;
            let (k, val) = first.split_once('=')?;
            (k.trim() == name).then(|| val.trim().to_string())
        })
    }
}

/// `base` is `http://127.0.0.1:PORT`.
pub fn host_of(base: &str) -> &str {
    base.trim_start_matches("http://").trim_end_matches('/')
}

/// Sends one request and reads the whole answer (the connection is closed after it).
pub fn send(
    base: &str,
    method: &str,
    target: &[u8],
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Resp> {
    let host = host_of(base);
    let mut s = TcpStream::connect(host)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    s.set_write_timeout(Some(Duration::from_secs(60)))?;
    let mut req = Vec::with_capacity(body.len() + 512);
    req.extend_from_slice(method.as_bytes());
    req.push(b' ');
    req.extend_from_slice(target);
    req.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    req.extend_from_slice(host.as_bytes());
    req.extend_from_slice(b"\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.extend_from_slice(k.as_bytes());
        req.extend_from_slice(b": ");
        req.extend_from_slice(v.as_bytes());
        req.extend_from_slice(b"\r\n");
    }
    if method != "GET" || !body.is_empty() {
        req.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    req.extend_from_slice(body);
    // The server may answer (413, 400) and close before reading everything we send.
    let _ = s.write_all(&req);
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse(&raw).ok_or_else(|| {
        std::io::Error::other(format!(
            "unparsable HTTP answer: {:?}",
            String::from_utf8_lossy(&raw[..raw.len().min(200)])
        ))
    })
}

pub fn get(base: &str, target: &str, cookie: Option<&str>) -> Resp {
    let c;
    let mut headers = Vec::new();
    if let Some(v) = cookie {
        c = v.to_string();
        headers.push(("Cookie", c.as_str()));
    }
    send(base, "GET", target.as_bytes(), &headers, b"").expect("GET")
}

fn parse(raw: &[u8]) -> Option<Resp> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked")
    });
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Some(Resp {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// Percent-encodes everything but unreserved characters (as a browser's form would, with
/// `%20` for a space).
pub fn encode(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// An `application/x-www-form-urlencoded` body.
pub fn form(fields: &[(&str, &str)]) -> Vec<u8> {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k.as_bytes()), encode(v.as_bytes())))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

/// The value of the first `<input name="NAME" value="...">` in a page.
pub fn input_value(html: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\" value=\"");
    let start = html.find(&needle)? + needle.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_string())
}

/// A signed-in session: its cookie header and form token.
#[derive(Clone, Debug)]
pub struct Session {
    pub login: String,
    pub cookie: String,
    pub csrf: String,
}

/// Signs in through the real sign-in form (sign-in cookie, token, then the session cookie).
pub fn sign_in(base: &str, login: &str, password: &str) -> Session {
    let page = get(base, "/login", None);
    let signin = page.set_cookie("sheping_signin").expect("sign-in cookie");
    let token = input_value(&page.text(), "token").expect("sign-in token");
    let cookie = format!("sheping_signin={signin}");
    let r = send(
        base,
        "POST",
        b"/login",
        &[
            ("Cookie", &cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &form(&[
            ("login", login),
            ("password", password),
            ("token", &token),
            ("next", ""),
        ]),
    )
    .expect("POST /login");
    assert_eq!(r.status, 303, "sign-in of {login}: {}", r.text());
    let session = r.set_cookie("sheping_session").expect("session cookie");
    let cookie = format!("sheping_session={session}");
    let page = get(base, "/account/password", Some(&cookie));
    let csrf = input_value(&page.text(), "csrf").expect("form token");
    Session {
        login: login.to_string(),
        cookie,
        csrf,
    }
}
