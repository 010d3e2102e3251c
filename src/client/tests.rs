//! The transport against a local TcpListener: the deadline covers the
//! body, every read is capped, and a failure says how far the request got.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::*;
use crate::secret::Secret;
use crate::settings::{CredentialSource, Source, Tls};

fn settings(port: u16, timeout: Duration) -> ConnectionSettings {
    ConnectionSettings {
        endpoint: Some(Sourced {
            value: Endpoint::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
            source: Source::Flag("--endpoint"),
        }),
        credential: CredentialSource::Token(Sourced {
            value: Secret::new("tok"),
            source: Source::Flag("--token"),
        }),
        tls: Tls::default(),
        timeout: Sourced {
            value: timeout,
            source: Source::Default,
        },
    }
}

/// The client without retries: these servers answer one connection.
fn once(mut client: Client) -> Client {
    client.set_retry(crate::settings::retry::RetryPolicy {
        retries: 0,
        ..Default::default()
    });
    client
}

/// A server that reads one request's head and then does `answer` with the socket.
fn serve(answer: impl FnOnce(&mut std::net::TcpStream) + Send + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && socket.read(&mut byte).unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
        answer(&mut socket);
    });
    port
}

#[test]
fn the_deadline_covers_a_dripping_body() {
    let port = serve(|s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{");
        for _ in 0..100 {
            thread::sleep(Duration::from_millis(50));
            if s.write_all(b" ").is_err() {
                return;
            }
        }
    });
    let client = once(Client::new(settings(port, Duration::from_millis(600))).unwrap());
    let started = Instant::now();
    let e = client
        .send(&client.get_image_request("x").unwrap())
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(e.message.contains("timed out"), "{}", e.message);
    assert_eq!(e.reach(), Reach::Reached);
    assert_eq!(e.exit_code(), 1);
}

#[test]
fn answers_are_capped() {
    let port = serve(|s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        for _ in 0..64 {
            if s.write_all(b"400\r\n").is_err()
                || s.write_all(&[b' '; 1024]).is_err()
                || s.write_all(b"\r\n").is_err()
            {
                return;
            }
        }
    });
    let s = settings(port, Duration::from_secs(5));
    let mut transport = Client::transport_for(&s).unwrap();
    transport.set_max_body(16 * 1024);
    let transport = Arc::new(transport);
    let credential = credential::build(&s.credential, &transport).unwrap();
    let client = once(Client::with_credential(s, transport, credential));
    let e = client
        .send(&client.get_image_request("x").unwrap())
        .unwrap_err();
    assert!(e.message.contains("is larger than"), "{}", e.message);
    assert_eq!(e.exit_code(), 1);

    let port = serve(|s| {
        let _ = s.write_all(
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 99999999999\r\n\r\n",
        );
    });
    let client = once(Client::new(settings(port, Duration::from_secs(5))).unwrap());
    let e = client
        .send(&client.get_image_request("x").unwrap())
        .unwrap_err();
    assert!(
        e.message.contains("Content-Length 99999999999"),
        "{}",
        e.message
    );
}

#[test]
fn a_dropped_connection_after_sending_leaves_the_outcome_unknown() {
    let port = serve(|s| {
        let _ = s.shutdown(std::net::Shutdown::Both);
    });
    let client = once(Client::new(settings(port, Duration::from_secs(5))).unwrap());
    let request = client
        .patch_request(
            "33ad552d-1149-471c-8190-ff6776174a00",
            "application/json",
            b"[]".to_vec(),
        )
        .unwrap();
    let e = client.send(&request).unwrap_err();
    assert_eq!(e.reach(), Reach::MaybeReached, "{}", e.message);
    assert!(!e.message.contains("cannot reach"), "{}", e.message);
    assert!(e.message.contains("outcome is unknown"), "{}", e.message);
    assert!(
        e.hints
            .iter()
            .any(|h| h.contains("ims-patch show 33ad552d-1149-471c-8190-ff6776174a00")),
        "{:?}",
        e.hints
    );
}

#[test]
fn nothing_sent_is_cannot_reach() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = once(Client::new(settings(port, Duration::from_secs(5))).unwrap());
    let e = client
        .send(&client.get_image_request("x").unwrap())
        .unwrap_err();
    assert_eq!(e.reach(), Reach::NotSent);
    assert!(e.message.contains("cannot reach"), "{}", e.message);
    assert!(std::error::Error::source(&e).is_some());
}

#[test]
fn error_answers_keep_status_headers_and_bytes() {
    let port = serve(|s| {
        let _ = s.write_all(
            b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 3\r\nContent-Length: 4\r\n\r\nbusy",
        );
    });
    let client = once(Client::new(settings(port, Duration::from_secs(5))).unwrap());
    let e = client
        .send(&client.get_image_request("x").unwrap())
        .unwrap_err();
    assert_eq!(e.status(), Some(503));
    assert_eq!(e.retry_after(), Some(crate::wire::RetryAfter::Seconds(3)));
    assert_eq!(
        e.wire.as_ref().unwrap().response.as_ref().unwrap().body,
        b"busy"
    );
    assert_eq!(e.exit_code(), 8);
}

#[test]
fn the_client_is_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Client>();
    assert_send_sync::<crate::error::Error>();
}

#[test]
fn the_endpoint_is_needed_only_when_no_credential_gives_one() {
    let mut s = settings(9, Duration::from_secs(1));
    s.endpoint = None;
    let e = Client::new(s).err().unwrap();
    assert_eq!(e.message, "no endpoint is set");
}

#[test]
fn names_are_looked_up_literally_and_next_links_stay_on_the_endpoint() {
    let mut s = settings(9292, Duration::from_secs(1));
    s.endpoint = Some(Sourced {
        value: Endpoint::parse("https://glance.example/image/v2").unwrap(),
        source: Source::Flag("--endpoint"),
    });
    let client = Client::new(s).unwrap();
    let r = client.find_by_name_request("in:web", false).unwrap();
    assert_eq!(
        r.url.as_str(),
        "https://glance.example/image/v2/images?name=eq%3Ain%3Aweb"
    );
    let r = client.find_by_name_request("a b", true).unwrap();
    assert_eq!(
        r.url.as_str(),
        "https://glance.example/image/v2/images?name=eq%3Aa+b&os_hidden=true"
    );
    // Glance's next link lacks the endpoint's path prefix; a hostile one
    // points elsewhere: only its query is used.
    for next in [
        "/v2/images?name=eq%3Ax&marker=m1",
        "https://evil.example/steal?name=eq%3Ax&marker=m1#frag",
    ] {
        let r = client.next_page_request(next).unwrap();
        assert_eq!(
            r.url.as_str(),
            "https://glance.example/image/v2/images?name=eq%3Ax&marker=m1",
            "{next}"
        );
    }
}
