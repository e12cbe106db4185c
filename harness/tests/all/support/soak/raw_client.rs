//! A raw HTTP/1.1 keep-alive client, so that any byte can be sent.

#[allow(unused_imports)]
use super::*;

/// An answer, read whole.
pub(super) struct RawResponse {
    pub(super) status: u16,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
    /// The server closes the connection after this answer.
    pub(super) close: bool,
}

impl RawResponse {
    /// `(name, value, expires now)` of every `Set-Cookie`.
    pub(super) fn set_cookies(&self) -> Vec<(String, String, bool)> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
            .filter_map(|(_, v)| {
                let cookie = jar::parse_set_cookie(v).ok()?;
                let expired = jar::expires_now(&cookie);
                Some((cookie.name().to_owned(), cookie.value().to_owned(), expired))
            })
            .collect()
    }
}

/// One keep-alive connection, reopened when the server closes it.
pub(super) struct Client {
    pub(super) addr: SocketAddr,
    pub(super) conn: Option<BufReader<TcpStream>>,
    pub(super) connects: u64,
}

impl Client {
    pub(super) fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            conn: None,
            connects: 0,
        }
    }

    pub(super) fn send(&mut self, request: &[u8], head: bool) -> std::io::Result<RawResponse> {
        let result = self.try_send(request, head);
        match &result {
            Ok(response) if !response.close => {}
            _ => self.conn = None,
        }
        result
    }

    pub(super) fn try_send(&mut self, request: &[u8], head: bool) -> std::io::Result<RawResponse> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => {
                let stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(10))?;
                stream.set_nodelay(true)?;
                stream.set_read_timeout(Some(Duration::from_secs(60)))?;
                stream.set_write_timeout(Some(Duration::from_secs(60)))?;
                self.connects += 1;
                self.conn
                    .insert(BufReader::with_capacity(64 * 1024, stream))
            }
        };
        conn.get_mut().write_all(request)?;
        read_response(conn, head)
    }
}

pub(super) fn closes(headers: &[(String, String)]) -> bool {
    headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close"))
}

pub(super) fn invalid(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

pub(super) fn read_line(
    conn: &mut BufReader<TcpStream>,
    line: &mut Vec<u8>,
) -> std::io::Result<()> {
    line.clear();
    if conn.read_until(b'\n', line)? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the server closed the connection",
        ));
    }
    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        line.pop();
    }
    Ok(())
}

pub(super) fn read_response(
    conn: &mut BufReader<TcpStream>,
    head: bool,
) -> std::io::Result<RawResponse> {
    let mut line = Vec::new();
    let (status, headers) = loop {
        read_line(conn, &mut line)?;
        let status_line = String::from_utf8_lossy(&line).into_owned();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
        let mut headers = Vec::new();
        loop {
            read_line(conn, &mut line)?;
            if line.is_empty() {
                break;
            }
            let text = String::from_utf8_lossy(&line);
            let (name, value) = text
                .split_once(':')
                .ok_or_else(|| invalid(format!("bad header line {text:?}")))?;
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        if !(100..200).contains(&status) {
            break (status, headers);
        }
    };
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let mut body = Vec::new();
    let mut close = closes(&headers);
    if head || status == 204 || status == 304 {
    } else if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            read_line(conn, &mut line)?;
            let size_text = String::from_utf8_lossy(&line);
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| invalid(format!("bad chunk size {size_text:?}")))?;
            if size == 0 {
                loop {
                    read_line(conn, &mut line)?;
                    if line.is_empty() {
                        break;
                    }
                }
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            conn.read_exact(&mut body[start..])?;
            read_line(conn, &mut line)?;
        }
    } else if let Some(length) = header("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| invalid(format!("bad Content-Length {length:?}")))?;
        body.resize(length, 0);
        conn.read_exact(&mut body)?;
    } else {
        // No length: the body ends with the connection.
        conn.read_to_end(&mut body)?;
        close = true;
    }
    Ok(RawResponse {
        status,
        headers,
        body,
        close,
    })
}
