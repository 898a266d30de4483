//! Turns Nagle's algorithm off on PostgreSQL connections.
//!
//! sqlx 0.9.0 opens its sockets with Nagle's algorithm on (0.8 turned it
//! off; upstream has merged the fix, unreleased at the time of writing).
//! A message longer than one TCP segment then sends its tail only once the
//! server acknowledges the head, and the server delays that acknowledgement
//! by up to 40 ms on Linux. On loopback this hits statements over 64 KiB,
//! such as the inbox consumer's batched inserts (45 ms each instead of 2);
//! across a network, by the segment size, any statement over about 1.4 KiB.
//!
//! sqlx gives no access to the socket, so each new connection asks the
//! server for its client port, finds the process's socket with that local
//! port in `/proc`, and sets TCP_NODELAY on it. Where that is impossible
//! (not Linux, a Unix socket, a proxy that changes the port) the
//! connection works as before. Remove this once sqlx sets it again.

use std::{
    os::fd::{BorrowedFd, RawFd},
    path::PathBuf,
};

use sea_orm::sqlx::{self, PgConnection};

/// For `PgPoolOptions::after_connect`: turns Nagle's algorithm off on the
/// new connection's socket. `server_port` is the port the client dials.
/// Never fails the connection: without the option it is slower, not wrong.
pub async fn disable_nagle(conn: &mut PgConnection, server_port: u16) -> Result<(), sqlx::Error> {
    match with_socket(conn, server_port, |socket| socket.set_nodelay(true)).await {
        Ok(Ok(Some(()))) => {}
        Ok(Ok(None)) => tracing::debug!(
            "no socket of this process has the connection's port; Nagle's algorithm stays on"
        ),
        Ok(Err(err)) => tracing::debug!(%err, "cannot turn Nagle's algorithm off"),
        Err(err) => tracing::debug!(%err, "cannot ask the server for the connection's port"),
    }
    Ok(())
}

/// Whether Nagle's algorithm is off on `conn`'s socket; `None` when the
/// socket cannot be found.
pub async fn is_nagle_off(
    conn: &mut PgConnection,
    server_port: u16,
) -> Result<std::io::Result<Option<bool>>, sqlx::Error> {
    with_socket(conn, server_port, std::net::TcpStream::nodelay).await
}

/// Runs `f` on `conn`'s own socket, found through the client port the
/// server saw.
async fn with_socket<T>(
    conn: &mut PgConnection,
    server_port: u16,
    f: impl FnOnce(&std::net::TcpStream) -> std::io::Result<T>,
) -> Result<std::io::Result<Option<T>>, sqlx::Error> {
    let local_port: Option<i32> = sqlx::query_scalar("SELECT inet_client_port()")
        .fetch_one(&mut *conn)
        .await?;
    let Some(local_port) = local_port.and_then(|p| u16::try_from(p).ok()) else {
        return Ok(Ok(None));
    };
    let fd = match socket_fd(local_port, server_port) {
        Ok(Some(fd)) => fd,
        Ok(None) => return Ok(Ok(None)),
        Err(err) => return Ok(Err(err)),
    };
    // SAFETY: `fd` is the socket of `conn`, which the caller holds
    // exclusively for this whole call, so it stays open.
    let socket = unsafe { BorrowedFd::borrow_raw(fd) };
    // Options belong to the socket, not to the descriptor: what `f` sets
    // stays set on the connection when the duplicate is dropped.
    Ok(socket
        .try_clone_to_owned()
        .map(std::net::TcpStream::from)
        .and_then(|duplicate| f(&duplicate))
        .map(Some))
}

/// The descriptor of this process's TCP socket from `local_port` to
/// `remote_port`, when exactly one matches.
pub fn socket_fd(local_port: u16, remote_port: u16) -> std::io::Result<Option<RawFd>> {
    let mut inodes = Vec::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        inodes.extend(
            text.lines()
                .skip(1)
                .filter_map(|line| socket_inode(line, local_port, remote_port)),
        );
    }
    let [inode] = inodes.as_slice() else {
        return Ok(None);
    };
    let target = PathBuf::from(format!("socket:[{inode}]"));
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let entry = entry?;
        if std::fs::read_link(entry.path()).is_ok_and(|link| link == target) {
            return Ok(entry.file_name().to_str().and_then(|n| n.parse().ok()));
        }
    }
    Ok(None)
}

/// The inode of a line of `/proc/net/tcp` (`sl local rem st … uid timeout
/// inode`, addresses as hex `ADDR:PORT`) if it joins the two ports.
fn socket_inode(line: &str, local_port: u16, remote_port: u16) -> Option<u64> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let port = |address: &str| {
        address
            .rsplit_once(':')
            .and_then(|(_, port)| u16::from_str_radix(port, 16).ok())
    };
    let joins = port(fields.get(1)?)? == local_port && port(fields.get(2)?)? == remote_port;
    joins.then(|| fields.get(9)?.parse().ok())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_inode_of_the_socket_joining_the_ports() {
        let line = "   3: 0100007F:D2F4 0100007F:1538 01 00000000:00000000 00:00000000 \
                    00000000     0        0 4187231 1 0000000000000000 20 4 30 10 -1";
        assert_eq!(socket_inode(line, 0xD2F4, 5432), Some(4_187_231));
        assert_eq!(socket_inode(line, 0xD2F5, 5432), None);
        assert_eq!(socket_inode(line, 0xD2F4, 5433), None);
        assert_eq!(socket_inode("garbage", 1, 2), None);
    }

    #[test]
    fn finds_its_own_socket_by_its_ports() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let client =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (local, remote) = (
            client.local_addr().expect("local").port(),
            client.peer_addr().expect("peer").port(),
        );
        if !std::path::Path::new("/proc/self/net/tcp").exists() {
            return;
        }
        let fd = socket_fd(local, remote).expect("lookup").expect("found");
        assert_eq!(fd, std::os::fd::AsRawFd::as_raw_fd(&client));
    }
}
