//! The corpus of `hermit bench memory`: synthetic chat messages from a
//! fixed seed (a vocabulary of a few hundred everyday words, names and
//! numbers), search queries in the same words, and labelled facts with
//! questions that say the same in other words.

/// A small deterministic generator (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

const SUBJECTS: &[&str] = &[
    "I",
    "we",
    "my sister",
    "my brother",
    "mum",
    "dad",
    "the kids",
    "Paul",
    "Sophie",
    "the team",
    "my boss",
    "the neighbours",
    "Karim",
    "Julie",
    "grandma",
    "Tom",
    "Emma",
    "our landlord",
    "the doctor",
    "Ben",
];
const VERBS: &[&str] = &[
    "need to",
    "want to",
    "should",
    "forgot to",
    "promised to",
    "will",
    "might",
    "have to",
    "would like to",
    "are going to",
    "tried to",
    "asked me to",
];
const ACTIONS: &[&str] = &[
    "call", "visit", "book", "buy", "fix", "clean", "check", "pay", "send", "cancel", "plan",
    "cook", "read", "write to", "email", "order", "return", "water", "paint", "move", "pick up",
    "drop off", "renew", "compare", "organise", "repair", "print", "sign", "look for", "sell",
];
const OBJECTS: &[&str] = &[
    "the dentist",
    "the car",
    "a table for four",
    "train tickets",
    "the garden",
    "the invoice",
    "groceries",
    "the roof",
    "a birthday present",
    "the electricity bill",
    "the printer",
    "flowers",
    "the report",
    "the insurance",
    "a new laptop",
    "the washing machine",
    "the school forms",
    "the hotel in Lyon",
    "the bike",
    "the vet",
    "a cake",
    "the boiler",
    "concert tickets",
    "the tax return",
    "the kitchen",
    "the bathroom tiles",
    "a babysitter",
    "the contract",
    "the passport photos",
    "the library books",
    "the heating",
    "some paint",
    "the fence",
    "a plumber",
    "the phone plan",
    "the bank",
    "the pharmacy",
    "a new mattress",
];
const TIMES: &[&str] = &[
    "tomorrow",
    "on Monday",
    "next week",
    "tonight",
    "this weekend",
    "before Friday",
    "at 9",
    "in the morning",
    "after lunch",
    "in March",
    "on the 12th",
    "before the holidays",
    "by the end of the month",
    "on Sunday",
    "later today",
    "next Tuesday",
    "at half past six",
];
const FILLERS: &[&str] = &[
    "It was raining all day.",
    "The meeting ran late again.",
    "Can you remind me?",
    "Thanks!",
    "ok",
    "sounds good",
    "No rush.",
    "The traffic was terrible this morning.",
    "I am so tired today.",
    "Let me know what you think.",
    "That restaurant near the station was great.",
    "The weather should be better on Saturday.",
    "We watched a documentary about whales last night.",
    "Prices went up again at the supermarket.",
    "The train was cancelled, so I worked from home.",
    "Remember the last time this happened?",
    "I finished the book, the ending was strange.",
    "The new colleague seems nice.",
    "My back hurts after gardening.",
    "We should go hiking in the mountains this summer.",
];

fn sentence(r: &mut Rng) -> String {
    match r.below(10) {
        0..=5 => format!(
            "{} {} {} {} {}.",
            r.pick(SUBJECTS),
            r.pick(VERBS),
            r.pick(ACTIONS),
            r.pick(OBJECTS),
            r.pick(TIMES)
        ),
        6 => format!(
            "It costs {} euros, {} said.",
            5 + r.below(995),
            r.pick(SUBJECTS)
        ),
        _ => r.pick(FILLERS).to_string(),
    }
}

/// A chat message: mostly one or two sentences, sometimes a paragraph.
pub fn message(r: &mut Rng) -> String {
    let n = match r.below(20) {
        0..=9 => 1,
        10..=15 => 2,
        16..=18 => 3 + r.below(3),
        _ => 6 + r.below(6),
    };
    let mut s = String::new();
    for i in 0..n {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&sentence(r));
    }
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().collect::<String>() + chars.as_str(),
        None => s,
    }
}

/// Facts and questions that say the same in other words.
pub const LABELLED: &[(&str, &str)] = &[
    (
        "My sister's birthday is on the 3rd of May",
        "When was my sibling born?",
    ),
    (
        "The wifi password at the cottage is written on the fridge door",
        "Where can I find the internet code for the holiday house?",
    ),
    (
        "I'm allergic to penicillin",
        "Which antibiotic can't I take?",
    ),
    (
        "Our car is a grey 2015 Skoda Octavia",
        "What vehicle do we drive?",
    ),
    (
        "The plumber Marc charges 60 euros an hour",
        "How much does the guy who repairs pipes cost?",
    ),
    (
        "I parked on level 3 of the station garage",
        "Where did I leave the vehicle?",
    ),
    (
        "Emma's school play is on Thursday evening",
        "When is my daughter's theatre performance?",
    ),
    (
        "I take my blood pressure pills every morning at 8",
        "When should I have my medication?",
    ),
    (
        "The spare house key is under the blue flower pot",
        "Where is the extra key to get in?",
    ),
    (
        "My passport expires in August 2027",
        "When does my travel document run out?",
    ),
    (
        "Grandma prefers tea with honey, never sugar",
        "How does my grandmother like her drink?",
    ),
    (
        "The dentist appointment was moved to the 14th",
        "When am I seeing the tooth doctor?",
    ),
    (
        "Our landlord is called Mr Dubois",
        "Who owns the flat we rent?",
    ),
    (
        "I lent my drill to the neighbour Karim",
        "Who has my power tool?",
    ),
    (
        "The kids' football training is on Wednesdays at 5",
        "When do the children play soccer?",
    ),
    (
        "My bank advisor is Claire at the Rivoli branch",
        "Who handles my account at the bank?",
    ),
    (
        "We are vegetarian, except Tom who eats fish",
        "Does anyone in the family eat seafood?",
    ),
    (
        "The boiler was serviced last October",
        "When was the heating system last inspected?",
    ),
    (
        "I want to learn Spanish before the trip to Seville",
        "Which language was I planning to study?",
    ),
    (
        "The cat needs her vaccine booster in January",
        "When does our pet need a shot?",
    ),
    (
        "My gym membership renews automatically on the 1st",
        "When is the fitness club fee charged?",
    ),
    ("Léa is allergic to peanuts", "What food makes Léa ill?"),
    (
        "Book club meets at Julie's place this month",
        "Where is the reading group gathering?",
    ),
    (
        "The recycling bins go out on Tuesday night",
        "When do I put the trash out?",
    ),
    (
        "I promised to help Ben move flats on Saturday",
        "What did I commit to doing for Ben at the weekend?",
    ),
    (
        "The insurance claim number is 88-2041",
        "What's the reference for my insurer?",
    ),
    (
        "Our wedding anniversary is the 21st of June",
        "When did we get married?",
    ),
    ("My running shoes are size 43", "What size are my trainers?"),
    (
        "The electrician is coming Friday between 8 and 10",
        "When will the person fixing the wiring arrive?",
    ),
    (
        "I stopped drinking coffee after 2pm to sleep better",
        "Why do I avoid caffeine in the afternoon?",
    ),
];

/// Search queries in the corpus's words.
pub fn queries(rng: &mut Rng, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| match rng.below(3) {
            0 => format!("{} {}", rng.pick(ACTIONS), rng.pick(OBJECTS)),
            1 => format!("when did {} {}", rng.pick(SUBJECTS), rng.pick(ACTIONS)),
            _ => format!("{} {}", rng.pick(OBJECTS), rng.pick(TIMES)),
        })
        .collect()
}
