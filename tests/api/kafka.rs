//! Kafka for the tests: the broker `scripts/test.sh` starts (BERYL_TEST_KAFKA), private brokers
//! that a test may stop and restart (tansu from `scripts/kafka.sh`), unique topic names, and a
//! bare rdkafka producer and reader to check what the service published.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use rdkafka::{
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    config::ClientConfig,
    consumer::{BaseConsumer, Consumer},
    message::{Header, Headers, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
    Message, Offset, TopicPartitionList,
};

/// The shared test broker.
pub fn broker() -> String {
    std::env::var("BERYL_TEST_KAFKA").expect(
        "BERYL_TEST_KAFKA is not set: run the suite with scripts/test.sh, or start a broker with \
         `scripts/kafka.sh start 19092` and export BERYL_TEST_KAFKA=127.0.0.1:19092",
    )
}

/// A name no other test uses.
pub fn unique(what: &str) -> String {
    format!("t{}.{what}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// A broker of the test's own, on a free port, that the test can stop and start again.
pub struct PrivateBroker {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

fn tansu() -> PathBuf {
    if let Ok(bin) = std::env::var("BERYL_TANSU_BIN") {
        return bin.into();
    }
    let out = Command::new(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka.sh"))
        .arg("bin")
        .output()
        .expect("scripts/kafka.sh bin");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

impl PrivateBroker {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut broker = Self { port, dir: tempfile::tempdir().unwrap(), child: None };
        broker.resume();
        broker
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Start the broker on its port and data.
    pub fn resume(&mut self) {
        let listener = format!("tcp://127.0.0.1:{}", self.port);
        let child = Command::new(tansu())
            .args(["broker", "--listener-url", &listener, "--advertised-listener-url", &listener])
            // tansu reads the SQLite path relative to its working directory.
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        self.child = Some(child);
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(20), "private broker did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stop the broker (SIGKILL: an outage, not a goodbye).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        self.stop();
    }
}

pub async fn create_topics(brokers: &str, topics: &[&str], partitions: i32) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
    let new: Vec<NewTopic<'_>> =
        topics.iter().map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1))).collect();
    for r in admin.create_topics(&new, &AdminOptions::new()).await.unwrap() {
        match r {
            Ok(_) | Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err(e) => panic!("create topic: {e:?}"),
        }
    }
}

pub fn producer(brokers: &str) -> FutureProducer {
    ClientConfig::new().set("bootstrap.servers", brokers).set("linger.ms", "0").create().unwrap()
}

pub async fn produce(producer: &FutureProducer, topic: &str, key: &str, payload: &[u8]) {
    let headers = OwnedHeaders::new().insert(Header { key: "request-id", value: Some("test-producer") });
    producer
        .send(FutureRecord::to(topic).key(key).payload(payload).headers(headers), Duration::from_secs(10))
        .await
        .unwrap();
}

/// A record as read back.
#[derive(Debug, Clone)]
pub struct Read {
    pub partition: i32,
    pub offset: i64,
    pub key: String,
    pub value: serde_json::Value,
    pub headers: Vec<(String, String)>,
}

impl Read {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Read `topic` from the beginning of every partition until `want` records arrived (or
/// `deadline`), then a little longer to catch any extra one.
pub fn read_topic(brokers: &str, topic: &str, want: usize, deadline: Duration) -> Vec<Read> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create()
        .unwrap();
    let start = Instant::now();
    let partitions = loop {
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)).unwrap();
        let n = metadata.topics().first().map(|t| t.partitions().len()).unwrap_or(0);
        if n > 0 {
            break n;
        }
        assert!(start.elapsed() < deadline, "topic {topic} never appeared");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut list = TopicPartitionList::new();
    for p in 0..partitions as i32 {
        list.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    consumer.assign(&list).unwrap();
    let mut out = Vec::new();
    let mut settle: Option<Instant> = None;
    while start.elapsed() < deadline {
        if out.len() >= want {
            let since = *settle.get_or_insert_with(Instant::now);
            if since.elapsed() > Duration::from_millis(500) {
                break;
            }
        }
        let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) else { continue };
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_string(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        out.push(Read {
            partition: m.partition(),
            offset: m.offset(),
            key: String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
            value: serde_json::from_slice(m.payload().unwrap_or_default()).unwrap_or(serde_json::Value::Null),
            headers,
        });
    }
    out
}
