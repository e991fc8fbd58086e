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
//! call to one of those tools ([`Route::forced`]): the grammar then
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
    /// The tools of the intents the message shows plainly: the first step
    /// must be a call to one of them. Empty: the model may also answer.
    pub forced: Vec<&'static str>,
    /// The plain intents one by one (their tools), in the order the
    /// message says them: "remember that …, and remind me …" is two
    /// steps, and after the first the next one must be a call to the
    /// other's tools.
    pub steps: Vec<Vec<&'static str>>,
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
                r"remind|reminder|rappel|don.t let me forget|ne me laisse pas oublier|n.oublie pas de me|alarm|alert me|wake me|réveille|every (day|week|morning|evening|night|monday|tuesday|wednesday|thursday|friday|saturday|sunday|weekday|month)|tous les|chaque (jour|semaine|matin|soir|lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche|mois)",
            ),
            force: Some(re(
                r"remind me|rappelle[- ]moi|fais[- ]moi penser|don.t let me forget|ne me laisse pas oublier|n.oublie pas de me|can you remind|peux[- ]tu me rappeler|pourrais[- ]tu me rappeler|set (a|an) (reminder|alarm)|mets[- ]moi un rappel|wake me|réveille[- ]moi",
            )),
        },
        Intent {
            tools: &["reminders", "cancel_reminder"],
            offer: re(
                r"reminder|rappel|schedule|planifi|cancel|annule|supprime le rappel|what.s (coming|planned|on my)|agenda",
            ),
            force: Some(re(
                r"(my|mes|les|all|what|which|quels|list|show|affiche|montre)\b.*\b(reminders|rappels|schedules)|cancel|annule",
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
            tools: &["briefing", "watch"],
            offer: re(
                r"briefing|brief me|morning (summary|update|digest)|résumé du matin|point du matin|keep an eye|watch|surveille|garde un œil|garde un oeil|follow up on|suivre",
            ),
            force: Some(re(
                r"briefing|brief me|morning (summary|update|digest)|résumé du matin|point du matin|keep an eye|watch|surveille|garde un œil|garde un oeil",
            )),
        },
        Intent {
            tools: &["remember"],
            offer: re(
                r"remember|retiens|souviens|mémorise|memorise|n.oublie pas que|keep in mind|garde en (tête|mémoire)|note (that|this)|for (future|later) reference|don.t forget (that|this|my)|my .* is\b|mon .* est\b|ma .* est\b",
            ),
            force: Some(re(
                r"(please |can you |could you |pourrais-tu |peux-tu )?(remember|retiens|mémorise|memorise|souviens-toi)\b.*(:|that|this|que|ça|my|mon|ma|mes)|n.oublie pas que|keep in mind that|garde en (tête|mémoire)|don.t forget (that|this|my)",
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
            tools: &[
                "list_files",
                "read_file",
                "write_file",
                "move_file",
                "delete_file",
            ],
            offer: re(
                r"\bfiles?\b|\bfolders?\b|director(y|ies)|document|workspace|fichiers?|dossiers?|répertoire|\b[\w-]+\.(txt|md|csv|json|toml|yaml|yml|log|py|sh|html|pdf|doc|docx|odt|rs|conf|ini)\b|\bsave (it|this|that)|enregistre|sauvegarde",
            ),
            force: Some(re(
                r"(list|show|what|which|read|open|display|print|see|look|check|save|write|create|make|delete|remove|erase|rename|move|put|copy|liste|montre|affiche|lis|ouvre|quel|quels|quelles|enregistre|sauvegarde|écris|crée|supprime|efface|renomme|déplace|mets)\b.*(\bfiles?\b|\bfolders?\b|fichiers?|dossiers?|\b[\w-]+\.(txt|md|csv|json|toml|yaml|yml|log|py|sh|html|conf|ini)\b)|\b(what.s|what is) in\b|qu.y a-t-il dans|\bcontenu de",
            )),
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

pub(crate) fn route(message: &str) -> Route {
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
                for t in intent.tools {
                    if !route.forced.contains(t) {
                        route.forced.push(t);
                    }
                }
            }
        }
    }
    steps.sort_by_key(|(at, _)| *at);
    route.steps = steps.into_iter().map(|(_, t)| t).collect();
    route
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
        assert_eq!(r.forced, ["calculate"]);
        assert_eq!(route("Hi! How are you today?"), Route::default());
        let r = route("What time is it?");
        assert!(!r.forced.is_empty() && r.tools.contains(&"time"), "{r:?}");
        let r = route("Remind me to call my dentist tomorrow at 10am.");
        assert!(
            r.forced.contains(&"remind") && !r.forced.contains(&"recall"),
            "{r:?}"
        );
        assert!(!r.tools.contains(&"shell"));
        let r = route("What files do I have?");
        assert!(
            !r.forced.is_empty() && r.tools.contains(&"list_files"),
            "{r:?}"
        );
        let r = route("Please remember this: my bicycle lock code is 4821.");
        assert!(
            !r.forced.is_empty() && r.tools.contains(&"remember"),
            "{r:?}"
        );
        assert!(!r.tools.contains(&"read_file"));
        assert!(route("What is the capital of France?").tools.is_empty());
        assert!(route("Bonjour, ça va ?").tools.is_empty());
        assert!(route("Who wrote Les Misérables?").tools.is_empty());
    }

    #[test]
    fn french_requests_are_understood() {
        assert_eq!(route("Combien font 12 fois 8 ?").forced, ["calculate"]);
        assert!(
            offers("Quelle heure est-il ?", "time")
                && !route("Quelle heure est-il ?").forced.is_empty()
        );
        let r = route("Rappelle-moi demain à 9h d'appeler le plombier");
        assert!(!r.forced.is_empty() && r.tools.contains(&"remind"), "{r:?}");
        assert!(
            route("Quels fichiers ai-je ?")
                .forced
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
                !r.forced.is_empty() && r.tools.contains(&"calculate"),
                "{m}: {r:?}"
            );
        }
        // Times and dates are not arithmetic.
        assert!(!offers("Remind me at 7:30 tomorrow", "calculate"));
        assert!(!offers("remind me in 2 hours to stretch", "calculate"));
    }

    #[test]
    fn commands_are_offered_only_when_asked_for() {
        assert_eq!(route("Run `df -h` for me").forced, ["shell"]);
        assert!(offers("Run `df -h` for me", "shell"));
        assert!(!offers("What's the weather like?", "shell"));
        assert!(!offers(
            "Save a file called groceries.txt with milk",
            "shell"
        ));
        assert!(
            route("Save a file called groceries.txt with milk")
                .forced
                .contains(&"write_file")
        );
    }
}
