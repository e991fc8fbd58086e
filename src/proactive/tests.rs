//! The scheduler driven without Matrix: a scripted model, a recording
//! outbox, the real stores.

use super::*;
use crate::inference::Engine;
use crate::trust::approvals::Approvals;
use crate::trust::audit::Audit;
use crate::trust::halt::Halt;
use crate::trust::policy::Principals;

const OWNER: &str = "@owner:box";

/// An outbox that records what it is given; sends once per key.
#[derive(Default)]
struct Recorder {
    /// `None`: nowhere to send yet.
    place: Option<Place>,
    sent: Mutex<Vec<(Place, String, Format, String)>>,
    asked: Mutex<Vec<(Place, bool, String)>>,
}

impl Outbox for Recorder {
    async fn place(&self, _principal: &str, room: Option<&str>) -> Option<Place> {
        match room {
            Some(r) => Some(Place::new("test", r)),
            None => self.place.clone(),
        }
    }

    async fn send(&self, place: &Place, m: Outbound<'_>) -> anyhow::Result<String> {
        let mut sent = self.sent.lock().unwrap();
        if let Some(n) = sent.iter().position(|s| s.3 == m.key) {
            return Ok(format!("$sent{n}"));
        }
        sent.push((place.clone(), m.text.into(), m.format, m.key.into()));
        Ok(format!("$sent{}", sent.len() - 1))
    }

    async fn ask_owner(&self, place: &Place, for_owner: bool, code: &str, _text: &str) {
        self.asked
            .lock()
            .unwrap()
            .push((place.clone(), for_owner, code.into()));
    }
}

impl Recorder {
    fn texts(&self) -> Vec<String> {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.1.clone())
            .collect()
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    engine: Engine,
    trust: Arc<Trust>,
    reminders: Arc<Reminders>,
    outbox: Arc<Recorder>,
    scheduler: Arc<Scheduler<Recorder>>,
}

/// A scheduler on a scripted model that writes `reply`, a word every
/// `pace`; messages go to the place "!home".
fn setup(reply: &'static str, pace: Duration) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let db = || crate::db::open(&dir.path().join("hermit.db")).unwrap();
    let trust = Arc::new(Trust {
        policy: Default::default(),
        principals: Principals {
            owner: OWNER.into(),
            members: Vec::new(),
            member_roles: Default::default(),
        },
        audit: Audit::open(dir.path()).unwrap(),
        approvals: Approvals::new(db(), Duration::from_secs(60), false),
        halt: Halt::new(db()),
        link_hosts: Vec::new(),
    });
    let engine = Engine::scripted(move |_: &crate::inference::GenerateRequest| {
        crate::inference::scripted::ScriptedReply::Paced {
            text: reply.to_string(),
            every: pace,
        }
    });
    let agent = Agent::new(engine.clone(), None, 4, Duration::from_secs(60))
        .unwrap()
        .with_trust(trust.clone());
    let reminders = Arc::new(Reminders::open(dir.path()).unwrap());
    let outbox = Arc::new(Recorder {
        place: Some(Place::new("test", "!home")),
        ..Default::default()
    });
    let scheduler = Scheduler::new(
        Settings {
            system_prompt: "You are Hermit.".into(),
            speaker: "@hermit:box".into(),
        },
        Arc::new(agent),
        trust.clone(),
        reminders.clone(),
        outbox.clone(),
    );
    Setup {
        _dir: dir,
        engine,
        trust,
        reminders,
        outbox,
        scheduler,
    }
}

fn due(action: Action, text: &str) -> Due {
    Due {
        reminder: 1,
        principal: "owner".into(),
        room: None,
        text: text.into(),
        due_at: crate::vocab::now_ms(),
        late: false,
        message: format!("⏰ Reminder: {text}"),
        action,
        grants: None,
        origin: None,
        tz: "UTC".into(),
    }
}

#[tokio::test]
async fn a_reminder_is_sent_once_and_waits_while_it_has_nowhere_to_go() {
    let s = setup("", Duration::ZERO);
    let at = jiff::Timestamp::from_millisecond(crate::vocab::now_ms() + 20).unwrap();
    s.reminders
        .add_once("owner", None, "stretch", at, "UTC", None)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(40)).await;
    // Nowhere to send it: it stays due.
    let nowhere = Scheduler::new(
        s.scheduler.settings.clone(),
        s.scheduler.agent.clone(),
        s.trust.clone(),
        s.reminders.clone(),
        Arc::new(Recorder::default()),
    );
    let taken = s.reminders.take_due(crate::vocab::now_ms()).unwrap();
    assert_eq!(taken.len(), 1);
    assert!(!nowhere.fire(taken).await);
    let taken = s.reminders.take_due(crate::vocab::now_ms()).unwrap();
    assert_eq!(taken.len(), 1, "still due");
    assert!(s.scheduler.fire(taken).await);
    assert!(
        s.reminders
            .take_due(crate::vocab::now_ms())
            .unwrap()
            .is_empty()
    );
    let sent = s.outbox.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, Place::new("test", "!home"));
    assert_eq!(sent[0].1, "⏰ Reminder: stretch");
    assert_eq!(sent[0].2, Format::Plain);
    assert_eq!(s.engine.generations(), 0, "a reminder asked the model");
}

#[tokio::test]
async fn a_briefing_is_the_models_words_then_the_exact_list() {
    let s = setup("You are watching a parcel today.", Duration::ZERO);
    s.reminders
        .add_watch("owner", "the parcel from Lyon", "UTC", None)
        .unwrap();
    s.scheduler
        .clone()
        .briefing(due(Action::Briefing, ""))
        .await;
    let texts = s.outbox.texts();
    assert_eq!(texts.len(), 1, "{texts:?}");
    let (words, list) = texts[0]
        .split_once("\n---\n")
        .expect("words, then the list");
    assert!(words.starts_with("☀️ "), "{words}");
    assert!(
        words.contains("You are watching a parcel today."),
        "{words}"
    );
    assert!(list.contains("the parcel from Lyon"), "{list}");
    assert_eq!(s.engine.generations(), 1);
}

#[tokio::test]
async fn a_briefing_with_nothing_to_say_calls_no_model() {
    let s = setup("Never written.", Duration::ZERO);
    s.scheduler
        .clone()
        .briefing(due(Action::Briefing, ""))
        .await;
    let texts = s.outbox.texts();
    assert_eq!(texts.len(), 1);
    assert!(
        texts[0].contains("nothing scheduled, nothing open"),
        "{texts:?}"
    );
    assert_eq!(s.engine.generations(), 0);
}

/// `!stop` ends a briefing being written: its turn is known to the
/// stop switch, the generation stops at its next word, and the list
/// goes out saying why it was not written up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_ends_a_briefing_being_written() {
    let s = setup(&*"word ".repeat(2000).leak(), Duration::from_millis(10));
    s.reminders
        .add_watch("owner", "the parcel from Lyon", "UTC", None)
        .unwrap();
    let writing = tokio::spawn(s.scheduler.clone().briefing(due(Action::Briefing, "")));
    let started = std::time::Instant::now();
    while s.engine.generations() == 0 {
        assert!(started.elapsed() < Duration::from_secs(10), "never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (turns, _) = s.trust.halt.stop(OWNER).unwrap();
    assert_eq!(
        turns, 1,
        "the briefing's turn is not known to the stop switch"
    );
    tokio::time::timeout(Duration::from_secs(5), writing)
        .await
        .expect("the briefing went on after the stop (2000 words take 20 s)")
        .unwrap();
    s.trust.halt.resume().unwrap();
    let texts = s.outbox.texts();
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(
        texts[0].contains("I am stopped, so I did not write this up."),
        "{}",
        texts[0]
    );
    assert!(!texts[0].contains("word word"), "{}", texts[0]);
    assert!(texts[0].contains("the parcel from Lyon"));
}

#[tokio::test]
async fn a_task_runs_as_a_turn_of_its_person_and_not_while_stopped() {
    let s = setup("Done: the file is there.", Duration::ZERO);
    s.trust.halt.stop(OWNER).unwrap();
    let mut d = due(Action::Task, "write the file");
    s.scheduler.clone().task(d.clone()).await;
    s.trust.halt.resume().unwrap();
    assert_eq!(s.engine.generations(), 0);
    d.due_at += 1;
    d.room = Some("!office".into());
    s.scheduler.clone().task(d).await;
    let sent = s.outbox.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(
        sent[0].1.starts_with("🗓️ Scheduled task 1: write the file"),
        "{}",
        sent[0].1
    );
    assert!(sent[0].1.contains("Not run: I am stopped (by @owner:box)."));
    assert_eq!(sent[1].0, Place::new("test", "!office"));
    assert!(
        sent[1].1.ends_with("Done: the file is there."),
        "{}",
        sent[1].1
    );
    assert_eq!(s.engine.generations(), 1);
}

#[test]
fn a_place_names_its_conversations_as_the_channel_does() {
    let p = Place::new("matrix", "!room:box");
    let key = p.conversation("task-3-100");
    assert_eq!(key.to_string(), "matrix:!room:box:task-3-100");
    assert_eq!(
        crate::memory::room_of_conversation(&key.to_string()).as_deref(),
        Some("!room:box")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_run_at_most_two_at_once_and_all_of_them_run() {
    // Each task's turn takes a while (ten words, 30 ms apart).
    let s = setup(
        "one two three four five six seven eight nine ten",
        Duration::from_millis(30),
    );
    let mut runs = Vec::new();
    for i in 1..=5 {
        let mut d = due(Action::Task, &format!("task {i}"));
        d.reminder = i;
        runs.push(tokio::spawn(s.scheduler.clone().task(d)));
    }
    // Turns waiting for the model: never more than the tasks in flight
    // (two; for an instant both wait, between one generation and the next).
    // Unbounded, the five would wait at once.
    let mut most_waiting = 0;
    while runs.iter().any(|r| !r.is_finished()) {
        most_waiting = most_waiting.max(s.engine.queue_len());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        most_waiting <= TASKS_AT_ONCE,
        "{most_waiting} turns waited for the model at once"
    );
    let results = s
        .outbox
        .texts()
        .iter()
        .filter(|t| t.contains("Scheduled task"))
        .count();
    assert_eq!(results, 5, "{:?}", s.outbox.texts());
}
