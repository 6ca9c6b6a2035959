//! A test server of known capacity: `workers` requests are served at once, each taking
//! `service` (a sleep), so that it answers at most workers / service requests per second, by
//! construction. Any method and path get `200 {}`; connections are kept alive, one thread
//! each, and the server stops when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

pub struct FixedServer {
    pub addr: SocketAddr,
    pub served: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

struct Slots {
    free: Mutex<usize>,
    freed: Condvar,
}

impl FixedServer {
    pub fn start(workers: usize, service: Duration) -> FixedServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let slots = Arc::new(Slots {
            free: Mutex::new(workers),
            freed: Condvar::new(),
        });
        {
            let (stop, served) = (Arc::clone(&stop), Arc::clone(&served));
            thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (slots, served, stop) =
                        (Arc::clone(&slots), Arc::clone(&served), Arc::clone(&stop));
                    thread::spawn(move || serve(conn, &slots, service, &served, &stop));
                }
            });
        }
        FixedServer { addr, served, stop }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for FixedServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(conn: TcpStream, slots: &Slots, service: Duration, served: &AtomicU64, stop: &AtomicBool) {
    let _ = conn.set_nodelay(true);
    let mut writer = match conn.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(conn);
    loop {
        // The head, then a body of Content-Length bytes.
        let mut length = 0usize;
        let mut first = true;
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" || line == "\n" {
                if first {
                    continue;
                }
                break;
            }
            first = false;
            if let Some((k, v)) = line.split_once(':') {
                if k.trim().eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if stop.load(Ordering::SeqCst) {
            return;
        }
        {
            let mut free = slots.free.lock().unwrap();
            while *free == 0 {
                free = slots.freed.wait(free).unwrap();
            }
            *free -= 1;
        }
        thread::sleep(service);
        {
            *slots.free.lock().unwrap() += 1;
            slots.freed.notify_one();
        }
        served.fetch_add(1, Ordering::Relaxed);
        let reply =
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
        if writer.write_all(reply).is_err() {
            return;
        }
    }
}
