//! The throw-away PostgreSQL cluster starts, answers and goes away.

use levee_lab::{require_postgres, PgCluster};

#[test]
fn cluster_starts_creates_a_database_and_stops() {
    if require_postgres().is_some() {
        return;
    }
    let mut pg = PgCluster::start(&[]).expect("start postgres");
    let url = pg.create_db("levee_lab_check").expect("create db");
    assert!(url.ends_with("/levee_lab_check"), "{url}");
    let port = pg.port();
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        "postgres listens"
    );
    pg.stop().expect("stop");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "postgres stopped"
    );
}
