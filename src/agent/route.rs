//! Which tools a message is offered, decided before the model is asked.
//!
//! A small model offered every tool (eighteen schemas, ~1,500 prompt
//! tokens) picks wrongly and often: a `shell` call for arithmetic, a file
//! read for a remembered fact, a call written as text for a greeting. So
//! each message is matched against the intents below (English and
//! French words), and only the tools of the intents it shows are offered;
//! a message that shows none (small talk, a knowledge question) is offered
//! none, and the model answers in words. When an intent is plain ("remind
//! me", "what files", "17 times 23") the first step of the turn must be a
//! call to one of those tools (the first of [`Route::steps`]): the grammar then
//! applies from the first token, so the model cannot explain instead of
//! doing it, nor write the call malformed.
//!
//! Rules, not a model: what is offered is predictable, testable and
//! explained in a sentence, and costs nothing. A tool the model calls
//! without being offered it is still only ever run through the decision
//! point, like any call.

use std::sync::LazyLock;

use regex::Regex;

/// The tools offered for one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Route {
    /// Tool names, in the toolbox's order once filtered by the agent.
    pub tools: Vec<&'static str>,
    /// The plain intents one by one (their tools), in the order the
    /// message says them: "remember that …, and remind me …" is two
    /// steps, and after the first the next one must be a call to the
    /// other's tools.
    pub steps: Vec<Vec<&'static str>>,
    /// Files at the top of the workspace the message names: a forced
    /// `read_file` may read only these (none: any path).
    pub paths: Vec<String>,
    /// Folders at the top of the workspace the message names: a forced
    /// `list_files` may list only these (none: any path).
    pub dirs: Vec<String>,
}

impl Route {
    /// The first thing the message asks plainly: the turn's first step
    /// must be a call to one of these tools. Empty: the model may also
    /// answer.
    #[cfg(test)]
    pub(crate) fn first(&self) -> &[&'static str] {
        self.steps.first().map(Vec::as_slice).unwrap_or_default()
    }
}

struct Intent {
    tools: &'static [&'static str],
    /// Shows the intent (the tools are offered).
    offer: Regex,
    /// Shows it plainly (a call is the first step); `None`: never forced.
    force: Option<Regex>,
}

fn re(s: &str) -> Regex {
    Regex::new(&format!("(?i){s}")).expect("route patterns are valid")
}

/// A number, then an operator in symbols or words, then a number; a
/// percentage; a root or a power; a conversion between units.
const ARITHMETIC: &str = r"\d\s*([-+*/×÷^x]|\btimes\b|\bplus\b|\bminus\b|divided|multipl|\bover\b|\bfois\b|\bmoins\b|divis|\bsur\b)\s*\(?-?\d|\d\s*%|\bper ?cent|pour ?cent|pourcentage|square root|\bsqrt|racine|squared|cubed|au carré|\bpower of\b|puissance";
const UNITS: &str = r"(km|kilomet\w*|mi|miles?|m|met(er|re)s?|mètres?|cm|mm|inch(es)?|in|pouces?|f(ee|oo)t|ft|yards?|kg|kilo(gram(me)?)?s?|g|gram(me)?s?|lbs?|pounds?|livres?|oz|ounces?|onces?|l|lit(er|re)s?|ml|gallons?|°\s*[cf]|[cf]|degrees?( celsius| fahrenheit)?|degrés?( celsius| fahrenheit)?|celsius|fahrenheit|mph|km/h|kmh)";

/// A file or a folder, named as such or by a file name.
const FILE_WORD: &str = r"\bfiles?\b|\bfolders?\b|director(y|ies)|\bdocuments?\b|workspace|fichiers?|dossiers?|répertoire|\b[\w-]+\.(txt|md|csv|json|toml|yaml|yml|log|py|sh|html|pdf|doc|docx|odt|rs|conf|ini)\b";
/// Asking to see what a file or folder holds.
const READ_VERB: &str = r"list|show|what|which|read|open|display|print|see|look|check|any|anything|liste|montre|affiche|lis|lire|ouvre|ouvrir|voir|quel|quels|quelles|qu";
/// Asking to change files.
const WRITE_VERB: &str = r"save|write|create|make|delete|remove|erase|rename|move|put|copy|enregistre|sauvegarde|écris|écrire|crée|créer|supprime|supprimer|efface|renomme|déplace|range|ranger|mets|copie";
/// Something to keep in the morning briefing.
const WATCH: &str = r"keep an eye|\bwatch|surveille|garde un (œ|oe)il|follow up on|(add|put)\b.*\b(to|in|into) (my|the) briefing|ajoute\b.*\b(à|a|dans) (mon|le) briefing|\b(in|into) my briefing|dans mon briefing";
/// Asking what a named file or folder holds (one named by its stem, as
/// "my todo list" names todo.txt).
const READ_PHRASE: &str = r"\b(read|open|show|display|print|see|look|check|what.s in|what is in|what.s on|what is on|anything in|lis|lire|ouvre|montre|affiche|qu.est-ce qu.il y a|qu.y a-t-il|y a quoi|contenu)\b";

static INTENTS: LazyLock<Vec<Intent>> = LazyLock::new(|| {
    let conversion = format!(
        r"\d[\d.,]*\s*{UNITS}\b.*\b(in|to|into|en|in ?to)\b\s*{UNITS}\b|\bconvert|\bconvers|how many \w+ (in|are in)|combien de \w+ (dans|font|fait)"
    );
    vec![
        Intent {
            tools: &["calculate"],
            offer: re(&format!(
                "{ARITHMETIC}|{conversion}|calculat|calcul|compute|combien font|combien fait|how much is \\d"
            )),
            force: Some(re(&format!("{ARITHMETIC}|{conversion}"))),
        },
        Intent {
            tools: &["time"],
            offer: re(
                r"\btime\b|\bheure|\bdate\b|\bdays?\b|\bjours?\b|\bweeks?\b|semaine|\bmonths?\b|\bmois\b|\byears?\b|\bannée|\bclock|\bwhen is|\bquand\b",
            ),
            force: Some(re(
                r"got the time|the time\?|tell me the time|know the time|what(’|')?s? (the )?(time|date|day)|what time|which day|what day|what is the date|today'?s date|quelle heure|quel jour|quelle (est la )?date|on est (le )?quel|sommes-nous|heure est-il|time is it|date is it|day is it|day of the week",
            )),
        },
        Intent {
            tools: &["remind", "schedule"],
            offer: re(
                r"\bremind\b|\breminder\b|\brappel\b|rappelle|rappeler|don.t let me forget|ne me laisse pas oublier|n.oublie pas de me|alarm|alert me|wake me|réveille|every (day|week|morning|evening|night|monday|tuesday|wednesday|thursday|friday|saturday|sunday|weekday|month)|tous les|chaque (jour|semaine|matin|soir|lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche|mois)",
            ),
            force: Some(re(
                r"remind me|rappelle[- ]moi|fais[- ]moi penser|don.t let me forget|ne me laisse pas oublier|n.oublie pas de me|can you remind|peux[- ]tu me rappeler|pourrais[- ]tu me rappeler|set (a|an) (reminder|alarm)|mets[- ]moi un rappel|wake me|réveille[- ]moi",
            )),
        },
        Intent {
            tools: &["reminders"],
            offer: re(
                r"reminders|rappels|schedules|what.s (coming|planned|on my)|agenda|\b(my|mes|any|all|quels|quoi)\b.*\b(reminder|rappel)",
            ),
            force: Some(re(
                r"(my|mes|les|all|any|what|which|quels|quoi|list|show|affiche|montre|liste)\b.*\b(reminders|rappels|schedules)",
            )),
        },
        Intent {
            tools: &["cancel_reminder"],
            offer: re(
                r"cancel|annule|(delete|remove|drop|get rid of|supprime|efface|enlève|retire)\b.*\b(reminder|rappel)|stop reminding|arrête de me rappeler",
            ),
            force: Some(re(
                r"cancel|annule|(delete|remove|drop|get rid of|supprime|efface|enlève|retire)\b.*\b(reminder|rappel)|stop reminding|arrête de me rappeler",
            )),
        },
        Intent {
            tools: &["schedule_task"],
            offer: re(
                r"every .*\b(summari[sz]e|check|send|write|make|prepare|tell)|tous les .*\b(résume|vérifie|envoie|écris|prépare)|chaque .*\b(résume|vérifie|envoie|écris|prépare)|by yourself|tout seul|automatically|automatiquement",
            ),
            force: None,
        },
        Intent {
            tools: &["briefing"],
            offer: re(
                r"briefing|brief me|morning (summary|update|digest)|résumé du matin|point du matin",
            ),
            force: Some(re(
                r"briefing|brief me|morning (summary|update|digest)|résumé du matin|point du matin",
            )),
        },
        Intent {
            tools: &["watch"],
            offer: re(WATCH),
            force: Some(re(WATCH)),
        },
        Intent {
            tools: &["remember"],
            offer: re(
                r"remember|retiens|souviens|mémorise|memorise|n.oublie pas que|keep (that |this |it )?in mind|garde (ça |cela |le |la )?en (tête|mémoire)|note to self|note (that|this)|for (future|later) reference|don.t forget (that|this|my)|my .* is\b|mon .* est\b|ma .* est\b",
            ),
            force: Some(re(
                r"(please |can you |could you |pourrais-tu |peux-tu )?(remember|retiens|mémorise|memorise|souviens-toi)\b.*(:|that|this|que|ça|my|mon|ma|mes)|\bremember (it|this|that)\b|n.oublie pas que|keep (that |this |it )?in mind|garde (ça |cela |le |la |l.info |l.information )?en (tête|mémoire)|don.t forget (that|this|my)|note to self",
            )),
        },
        Intent {
            tools: &["recall"],
            offer: re(
                r"\bmy\b|\bmes\b|\bmon\b|\bma\b|what did i|qu.ai-je|do you (know|remember)|te souviens|tu te rappelles|did i (tell|say|mention)|ai-je dit|remember",
            ),
            force: None,
        },
        Intent {
            tools: &["forget"],
            offer: re(r"forget|oublie|erase|efface|delete (what|everything) you (know|remember)"),
            force: Some(re(
                r"\bforget\b|\boublie\b|erase (what|my|that)|efface (ce|ma|mon|mes)",
            )),
        },
        Intent {
            tools: &["notes"],
            offer: re(
                r"\bnotes?\b|jot|write (this |that |it )?down|note[- ]?(book|pad)|prends en note|prendre note|\bnoter\b|\bnote\b",
            ),
            force: Some(re(
                r"(take|make|add|create|start|new|write|jot)\b.*\bnote|\bnote (that|this|down)|\bmy notes\b|\bnotes about\b|\bin (my|the) note|prends (une |en )?note|ajoute .*note|crée une note|nouvelle note|\bnote (que|ça|ceci)|\bmes notes\b|dans (ma|la) note|jot (this |that |it )?down",
            )),
        },
        Intent {
            tools: &["list_files", "read_file"],
            offer: re(FILE_WORD),
            force: Some(re(&format!(
                r"\b({READ_VERB})\b.*({FILE_WORD})|\b(what.s|what is|anything|quoi) in\b|qu.y a-t-il dans|\bcontenu de",
            ))),
        },
        Intent {
            tools: &["write_file", "move_file", "delete_file"],
            offer: re(&format!(
                r"\b({WRITE_VERB})\b.*({FILE_WORD})|\bsave (it|this|that)|enregistre|sauvegarde"
            )),
            force: Some(re(&format!(r"\b({WRITE_VERB})\b.*({FILE_WORD})"))),
        },
        Intent {
            tools: &["trash"],
            offer: re(
                r"\btrash|corbeille|restore|restaure|undelete|deleted files|fichiers supprimés|recover",
            ),
            force: Some(re(r"\btrash|corbeille|restore|restaure|undelete")),
        },
        Intent {
            tools: &["shell"],
            offer: re(
                r"`[^`]+`|\brun\b|\bexecute|\bcommand|\bshell|\bterminal|\bscript|\blance\b|exécute|commande|\bdisk (space|usage)|\bdf\b|\buptime\b|\bgit\b|\bgrep\b|\bps\b|\bls\b",
            ),
            force: Some(re(
                r"(\brun|\bexecute|\blance|exécute)\b.*(`[^`]+`|command|commande|script)|^\s*`[^`]+`\s*$|\brun `",
            )),
        },
        Intent {
            tools: &["fetch"],
            offer: re(
                r"https?://|\bwww\.|web ?(page|site)|site web|\burl\b|\bfetch\b|download|télécharge",
            ),
            force: Some(re(r"https?://\S+")),
        },
    ]
});

/// The intents `message` shows, and the tools they offer.
/// The tool sets a message showing one intent is offered, and the empty
/// set (small talk): the prompt prefixes worth evaluating ahead of time
/// ([`super::Agent::warm`]).
pub(crate) fn tool_sets() -> Vec<Vec<&'static str>> {
    let mut sets = vec![Vec::new()];
    sets.extend(INTENTS.iter().map(|i| i.tools.to_vec()));
    sets
}

#[cfg(test)]
pub(crate) fn route(message: &str) -> Route {
    route_in(message, &[])
}

/// A file or folder at the top of the person's workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub name: String,
    pub dir: bool,
}

/// The top of `workspace`, as [`route_in`] reads it (at most a few
/// hundred entries; hidden ones left out). Unreadable: nothing.
pub(crate) fn entries(workspace: &std::path::Path) -> Vec<Entry> {
    const MAX: usize = 500;
    let Ok(dir) = std::fs::read_dir(workspace) else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            if name.starts_with('.') {
                return None;
            }
            let kind = e.file_type().ok()?;
            (kind.is_file() || kind.is_dir()).then(|| Entry {
                name,
                dir: kind.is_dir(),
            })
        })
        .take(MAX)
        .collect()
}

static LIST_WORD: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\bfiles\b|\bfolders?\b|director(y|ies)|fichiers|dossiers?|répertoire|\blist (of |my |the )?files|workspace",
    )
});
static READ: LazyLock<Regex> = LazyLock::new(|| re(READ_PHRASE));
static FILE_NAME: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b[\w-]+(/[\w-]+)*\.(txt|md|csv|json|toml|yaml|yml|log|py|sh|html|pdf|doc|docx|odt|rs|conf|ini)\b",
    )
});

/// [`route`], knowing what the top of the person's workspace holds: a
/// file or folder named in the message, even by its stem alone ("my todo
/// list", "ma liste de courses", "my docs folder"), offers the file
/// tools; asked to be read or shown, it is the step, and the call may
/// name only the entries the message named ([`Route::paths`],
/// [`Route::dirs`]).
pub(crate) fn route_in(message: &str, workspace: &[Entry]) -> Route {
    let mut route = Route::default();
    let mut steps: Vec<(usize, Vec<&'static str>)> = Vec::new();
    for intent in INTENTS.iter() {
        if intent.offer.is_match(message) {
            for t in intent.tools {
                if !route.tools.contains(t) {
                    route.tools.push(t);
                }
            }
            if let Some(at) = intent.force.as_ref().and_then(|f| f.find(message)) {
                steps.push((at.start(), intent.tools.to_vec()));
            }
        }
    }
    // "Keep an eye on X in my briefing": the briefing is where, not what.
    if steps.iter().any(|(_, t)| t == &["watch"]) {
        steps.retain(|(_, t)| t != &["briefing"]);
    }
    // Entries of the workspace the message names.
    let lower = message.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    let named: Vec<&Entry> = workspace
        .iter()
        .filter(|e| {
            let name = e.name.to_lowercase();
            let stem = name.split('.').next().unwrap_or_default();
            lower.contains(&name) || (stem.chars().count() >= 3 && words.contains(&stem))
        })
        .collect();
    route.paths = named
        .iter()
        .filter(|e| !e.dir)
        .map(|e| e.name.clone())
        .collect();
    route.dirs = named
        .iter()
        .filter(|e| e.dir)
        .map(|e| e.name.clone())
        .collect();
    const FILES_READ: &[&str] = &["list_files", "read_file"];
    if !named.is_empty() {
        for t in FILES_READ {
            if !route.tools.contains(t) {
                route.tools.push(t);
            }
        }
        // Named by its stem alone, it is a step only when nothing else is
        // asked plainly ("remind me to check the plan" is a reminder).
        if let Some(at) = READ.find(message)
            && steps.is_empty()
        {
            steps.push((at.start(), FILES_READ.to_vec()));
        }
    }
    // Reading or listing: a file named (and no folder nor "files" said)
    // is read; a folder or "files", listed.
    let names_file = !route.paths.is_empty() || FILE_NAME.is_match(message);
    let says_list = LIST_WORD.is_match(message) || !route.dirs.is_empty();
    for (_, tools) in steps.iter_mut() {
        if tools == FILES_READ {
            if names_file && !says_list {
                *tools = vec!["read_file"];
            } else if says_list && !names_file {
                *tools = vec!["list_files"];
            }
        }
    }
    steps.sort_by_key(|(at, _)| *at);
    route.steps = steps.into_iter().map(|(_, t)| t).collect();
    route
}

/// The phrases of `message` that Hermit reads as a time to come
/// ("tomorrow at 9", "in one hour", "demain soir à 19h"), longest first
/// where one holds another, in the order said; at most six.
pub(crate) fn time_phrases(message: &str, tz: &str) -> Vec<String> {
    const LONGEST: usize = 8;
    let Ok(zone) = crate::schedule::timezone(tz) else {
        return Vec::new();
    };
    let now = jiff::Timestamp::now().to_zoned(zone);
    let when = |span: &[&str]| -> Option<jiff::Timestamp> {
        if span.is_empty() || span.iter().any(|w| w.is_empty()) {
            return None;
        }
        crate::schedule::when::parse(&span.join(" "), &now)
            .ok()
            .map(|z| z.timestamp())
    };
    let words: Vec<&str> = message
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| {
                matches!(
                    c,
                    '.' | ',' | '!' | '?' | ';' | ':' | '"' | '«' | '»' | '(' | ')'
                )
            })
        })
        .collect();
    // The longest span from each word that reads as a time, cut of the
    // words before it that change nothing ("remind me in one hour" is
    // "in one hour"; a word cut at the end could be its hour).
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for i in 0..words.len() {
        for len in (1..=LONGEST.min(words.len() - i)).rev() {
            let Some(t) = when(&words[i..i + len]) else {
                continue;
            };
            let (mut a, b) = (i, i + len);
            // ("in" stays: "in one hour" says it better than "one hour".)
            let keep = |w: &str| matches!(w.to_lowercase().as_str(), "in" | "dans" | "within");
            while b - a > 1 && !keep(words[a]) && when(&words[a + 1..b]) == Some(t) {
                a += 1;
            }
            spans.push((a, b));
            break;
        }
    }
    let mut out: Vec<String> = Vec::new();
    for &(a, b) in &spans {
        let inside = spans
            .iter()
            .any(|&(c, d)| (c, d) != (a, b) && c <= a && b <= d);
        let phrase = words[a..b].join(" ");
        if !inside && !out.contains(&phrase) {
            out.push(phrase);
        }
    }
    out.truncate(6);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_plain_requests_are_two_steps_in_the_order_said() {
        let r = route(
            "Remember that my gym locker is number 56, and remind me tomorrow at 7am to bring the padlock.",
        );
        assert_eq!(r.steps, vec![vec!["remember"], vec!["remind", "schedule"]]);
        let r = route("What time is it? And remind me in one hour to stretch.");
        assert_eq!(r.steps, vec![vec!["time"], vec!["remind", "schedule"]]);
        assert_eq!(
            route("Hi! How are you today?").steps,
            Vec::<Vec<&str>>::new()
        );
    }

    fn offers(message: &str, tool: &str) -> bool {
        route(message).tools.contains(&tool)
    }

    /// The everyday requests the default model got wrong with every tool
    /// offered.
    #[test]
    fn everyday_requests_get_the_tools_they_need_and_no_others() {
        let r = route("What is 17 times 23?");
        assert_eq!(r.tools, ["calculate"]);
        assert_eq!(r.first(), ["calculate"]);
        assert_eq!(route("Hi! How are you today?"), Route::default());
        let r = route("What time is it?");
        assert!(!r.first().is_empty() && r.tools.contains(&"time"), "{r:?}");
        let r = route("Remind me to call my dentist tomorrow at 10am.");
        assert!(
            r.first().contains(&"remind") && !r.first().contains(&"recall"),
            "{r:?}"
        );
        assert!(!r.tools.contains(&"shell"));
        let r = route("What files do I have?");
        assert!(
            !r.first().is_empty() && r.tools.contains(&"list_files"),
            "{r:?}"
        );
        let r = route("Please remember this: my bicycle lock code is 4821.");
        assert!(
            !r.first().is_empty() && r.tools.contains(&"remember"),
            "{r:?}"
        );
        assert!(!r.tools.contains(&"read_file"));
        assert!(route("What is the capital of France?").tools.is_empty());
        assert!(route("Bonjour, ça va ?").tools.is_empty());
        assert!(route("Who wrote Les Misérables?").tools.is_empty());
    }

    #[test]
    fn french_requests_are_understood() {
        assert_eq!(route("Combien font 12 fois 8 ?").first(), ["calculate"]);
        assert!(
            offers("Quelle heure est-il ?", "time")
                && !route("Quelle heure est-il ?").first().is_empty()
        );
        let r = route("Rappelle-moi demain à 9h d'appeler le plombier");
        assert!(
            !r.first().is_empty() && r.tools.contains(&"remind"),
            "{r:?}"
        );
        assert!(
            route("Quels fichiers ai-je ?")
                .first()
                .contains(&"list_files")
        );
        assert!(offers("Retiens que mon code de vélo est 4821", "remember"));
        assert!(offers("Prends une note : acheter du pain", "notes"));
    }

    #[test]
    fn conversions_and_percentages_are_arithmetic() {
        for m in [
            "Convert 5 miles to km",
            "whats 15% of 80",
            "How much is 100 F in C?",
            "70 kg in pounds?",
            "Combien font 3 km en miles ?",
            "what's the square root of 144",
        ] {
            let r = route(m);
            assert!(
                !r.first().is_empty() && r.tools.contains(&"calculate"),
                "{m}: {r:?}"
            );
        }
        // Times and dates are not arithmetic.
        assert!(!offers("Remind me at 7:30 tomorrow", "calculate"));
        assert!(!offers("remind me in 2 hours to stretch", "calculate"));
    }

    #[test]
    fn commands_are_offered_only_when_asked_for() {
        assert_eq!(route("Run `df -h` for me").first(), ["shell"]);
        assert!(offers("Run `df -h` for me", "shell"));
        assert!(!offers("What's the weather like?", "shell"));
        assert!(!offers(
            "Save a file called groceries.txt with milk",
            "shell"
        ));
        assert!(
            route("Save a file called groceries.txt with milk")
                .first()
                .contains(&"write_file")
        );
    }

    fn ws(names: &[&str]) -> Vec<Entry> {
        names
            .iter()
            .map(|n| Entry {
                name: n.trim_end_matches('/').to_string(),
                dir: n.ends_with('/'),
            })
            .collect()
    }

    /// A file named by its stem ("my todo list") is read, and only that
    /// file may be; a folder named is listed; a request that only
    /// mentions one (a reminder) is not turned into a read.
    #[test]
    fn files_named_by_their_stem_are_read_and_folders_listed() {
        let w = ws(&["todo.txt", "courses.txt", "docs/", "plan.md"]);
        let r = route_in("Read me my todo list", &w);
        assert_eq!(r.first(), ["read_file"]);
        assert_eq!(r.paths, ["todo.txt"]);
        let r = route_in("Qu'est-ce qu'il y a sur ma liste de courses ?", &w);
        assert_eq!(r.first(), ["read_file"]);
        assert_eq!(r.paths, ["courses.txt"]);
        let r = route_in("Is there anything in my docs folder?", &w);
        assert_eq!(r.first(), ["list_files"]);
        assert_eq!(r.dirs, ["docs"]);
        let r = route_in("Remind me tomorrow at 9 to check the plan", &w);
        assert_eq!(r.steps, vec![vec!["remind", "schedule"]]);
        assert!(r.tools.contains(&"read_file"));
        // Nothing of the sort in the workspace: nothing read.
        assert!(route_in("Read me my todo list", &[]).first().is_empty());
        // Named with its extension, not there: still read (the tool says so).
        assert_eq!(
            route_in("What's in shopping.txt?", &w).first(),
            ["read_file"]
        );
        assert_eq!(
            route_in("What files do I have?", &w).first(),
            ["list_files"]
        );
    }

    /// Reading offers no tool that writes; writing offers no reading.
    #[test]
    fn reading_a_file_offers_nothing_that_writes() {
        let r = route("Tu peux me lire le fichier recette.txt ?");
        assert_eq!(r.first(), ["read_file"]);
        assert!(!r.tools.contains(&"write_file"), "{r:?}");
        let r = route("Delete old.txt");
        assert!(r.first().contains(&"delete_file"), "{r:?}");
        let r = route("Range facture.txt dans le dossier archives.");
        assert!(r.first().contains(&"move_file"), "{r:?}");
        let r = route("What's in todo.txt? Then remind me about the first item tomorrow at 9.");
        assert_eq!(r.steps, vec![vec!["read_file"], vec!["remind", "schedule"]]);
    }

    #[test]
    fn listing_reminders_offers_no_cancel_and_a_watch_is_not_a_briefing() {
        let r = route("J'ai quoi comme rappels ?");
        assert_eq!(r.first(), ["reminders"]);
        assert!(
            !r.tools.contains(&"cancel_reminder") && !r.tools.contains(&"remind"),
            "{r:?}"
        );
        let r = route("List my reminders and cancel the one about the dentist.");
        assert_eq!(r.steps, vec![vec!["reminders"], vec!["cancel_reminder"]]);
        assert_eq!(
            route("Cancel my dentist reminder").first(),
            ["cancel_reminder"]
        );
        assert_eq!(route("Arrête le briefing du matin").first(), ["briefing"]);
        assert_eq!(
            route("Keep an eye on the parcel from Lyon in my briefing.").first(),
            ["watch"]
        );
        assert_eq!(
            route("Ajoute à mon briefing du matin : penser à renouveler mon passeport.").first(),
            ["watch"]
        );
    }

    #[test]
    fn facts_to_keep_in_everyday_words_are_remembered() {
        for m in [
            "fyi I'm allergic to peanuts, keep that in mind",
            "Garde ça en mémoire : le code wifi de la maison, c'est bleu-citron-42.",
            "Note to self for later: my passport expires in March 2029, remember it.",
        ] {
            assert_eq!(route(m).first(), ["remember"], "{m}");
        }
    }

    #[test]
    fn the_times_a_message_says_are_found_in_its_words() {
        let t = time_phrases(
            "What time is it? And remind me in one hour to stretch.",
            "UTC",
        );
        assert_eq!(t, ["in one hour"]);
        let t = time_phrases(
            "What's in todo.txt? Then remind me about the first item tomorrow at 9.",
            "UTC",
        );
        assert_eq!(t, ["tomorrow at 9"]);
        let t = time_phrases("Rappelle-moi demain à 14h d'appeler le kiné.", "UTC");
        assert_eq!(t, ["demain à 14h"]);
        assert!(time_phrases("Remind me to call mom", "UTC").is_empty());
    }
}
