//! A fresh database per service per test.

use sea_orm::{ConnectionTrait, Database};

pub struct TestDb {
    url: String,
    /// For PostgreSQL: the server's admin URL and the database to drop.
    postgres: Option<(String, String)>,
    /// For SQLite: the folder holding the file.
    _dir: Option<TempDir>,
}

/// A temporary folder removed on drop.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl TestDb {
    pub async fn create(service: &str) -> TestDb {
        let unique = uuid::Uuid::now_v7().simple().to_string();
        match std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
        {
            Some(admin_url) => {
                let name = format!("t_{service}_{unique}");
                let admin = Database::connect(&admin_url)
                    .await
                    .expect("connect to TEST_DATABASE_URL");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .expect("create test database");
                admin.close().await.ok();
                let base = admin_url
                    .rsplit_once('/')
                    .map_or(admin_url.as_str(), |(base, _)| base);
                TestDb {
                    url: format!("{base}/{name}"),
                    postgres: Some((admin_url.clone(), name)),
                    _dir: None,
                }
            }
            None => {
                let dir = std::env::temp_dir().join(format!("e2e-{service}-{unique}"));
                std::fs::create_dir_all(&dir).expect("create temp dir");
                TestDb {
                    url: format!("sqlite://{}/{service}.db?mode=rwc", dir.display()),
                    postgres: None,
                    _dir: Some(TempDir(dir)),
                }
            }
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// A copy of this database as it is now, as a backup would be. Nothing
    /// may be connected to it (stop its service first).
    pub async fn copy(&self, service: &str) -> TestDb {
        let copy = TestDb::create(service).await;
        match (&self.postgres, &copy.postgres) {
            (Some((admin_url, from)), Some((_, to))) => {
                let admin = Database::connect(admin_url)
                    .await
                    .expect("admin connection");
                // A template must have no sessions; the stopped service's
                // pool may still be closing its connections.
                admin
                    .execute_unprepared(&format!(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE datname = '{from}' AND pid <> pg_backend_pid()"
                    ))
                    .await
                    .expect("end sessions");
                admin
                    .execute_unprepared(&format!("DROP DATABASE \"{to}\""))
                    .await
                    .expect("drop the empty copy");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{to}\" TEMPLATE \"{from}\""))
                    .await
                    .expect("copy the database");
                admin.close().await.ok();
            }
            _ => {
                let (Some(from), Some(to)) = (sqlite_file(&self.url), sqlite_file(&copy.url))
                else {
                    panic!("copy needs two SQLite files");
                };
                for suffix in ["", "-wal", "-shm"] {
                    let source = format!("{from}{suffix}");
                    if std::path::Path::new(&source).exists() {
                        std::fs::copy(&source, format!("{to}{suffix}")).expect("copy the file");
                    }
                }
            }
        }
        copy
    }

    pub async fn drop_database(&mut self) {
        if let Some(postgres) = self.postgres.take() {
            drop_postgres(postgres).await;
        }
    }
}

fn sqlite_file(url: &str) -> Option<String> {
    let rest = url.strip_prefix("sqlite://")?;
    Some(rest.split('?').next()?.to_owned())
}

async fn drop_postgres((admin_url, name): (String, String)) {
    if let Ok(admin) = Database::connect(&admin_url).await {
        let _ = admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await;
        admin.close().await.ok();
    }
}

/// A test that failed before `drop_database` still leaves no database
/// behind: the drop happens here, on a thread of its own (this may run while
/// a panic unwinds inside the test's runtime, which cannot be blocked on).
impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(postgres) = self.postgres.take() else {
            return;
        };
        let dropping = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                runtime.block_on(drop_postgres(postgres));
            }
        });
        let _ = dropping.join();
    }
}
