"""Personal-data masking: planted items are replaced by the right placeholder, nothing else moves."""

from __future__ import annotations

from collections import Counter

import pytest
from datasets import Dataset, DatasetDict, Features, List, Value

from hub_tools.pairs.privacy import scrub, scrub_dataset

TEMPLATES = [
    "Honestly I don't know who to tell, but you can reach me at {} if that helps.",
    "{} is what I gave the school counselor, and she never followed up.",
    "My ex keeps showing up (he knows {}) and I feel unsafe.",
    "Please don't share this: {}. I'm scared it gets out",
]

PLANTED = {
    "EMAIL": ["jane.doe@example.com", "J_Smith+therapy@mail.example.co.uk", "sad.girl.1999@gmail.com"],
    "URL": [
        "https://www.reddit.com/r/anxiety/comments/abc123/help",
        "http://example.org/page?id=7&x=y",
        "www.mycounselingblog.net",
        "psychologytoday.com/us/therapists/jane-doe",
        "myname.blogspot.com",
        "bbc.co.uk/news/health",
        "about.me/jane",
    ],
    "PHONE": [
        "+44 20 7946 0958", "(555) 123-4567", "555-123-4567", "555.123.4567", "+1 415 555 2671",
        "1-212-555-0187", "+33 1 42 68 53 00", "415 555 2671", "+1 (415) 555-2671", "555-123-4567 ext. 89",
    ],
    "ADDRESS": [
        "221B Baker Street", "1600 Pennsylvania Ave NW", "42 Elm St., Apt 3", "350 5th Avenue, Suite 400",
        "10 W 42nd St", "77 Mulberry Lane, Springfield, IL 62704", "P.O. Box 1234", "12 Oak street",
        "9 Kings Road, Flat 2B", "5 Maple Dr, Unit 4",
    ],
    "ID": [
        "123-45-6789", "4111 1111 1111 1111", "4111-1111-1111-1111", "4111111111111111", "3782 822463 10005",
        "12345678", "0012345", "AB1234567", "QQ123456C", "X12345678", "4155552671",
    ],
}
CASES = [(kind, item, tpl) for kind, items in PLANTED.items() for item in items for tpl in TEMPLATES]


@pytest.mark.parametrize(("kind", "item", "template"), CASES, ids=[f"{k}:{i}:{n % len(TEMPLATES)}" for n, (k, i, _) in enumerate(CASES)])
def test_planted_item_masked_rest_identical(kind, item, template):
    text, counts = scrub(template.format(item))
    assert text == template.format(f"[{kind}]")
    assert counts == Counter({kind: 1})


NEGATIVE = [
    "On 2019-05-04 at 10:30 I paid $1,500 for a course that lasted 3 years.",
    "I'm 34 and my son is 12; we stayed in room 12 for 5 days.",
    "In 1999 and 2001 things were hard, and 45% of the time I cry.",
    "I sleep 4-5 hours, 3-4 times a week, ever since 4/5/2019.",
    "Between 2015-2018 I had 2 jobs; my blood pressure was 140/90.",
    "Call 911 or 988 if you are in danger. It was 20190504 when it happened.",
    "I earn $45,000 a year and about 1,234,567 people live in this city.",
    "My doctor, on 14 May Dr Smith said I'm fine. I saw Dr. Lee at 3 pm.",
    "I walked 5 miles down Main Street. My ASP.NET job is at a Node.js shop.",
    "Version 2.0.1 of the app, pi is 3.1415926, e.g. or i.e. in the U.S. are fine.",
    "We met on 12/25/2020 at 7:45pm, I was 19 years old.",
    "My PHQ-9 score is 21 and GAD-7 is 15 after COVID-19.",
    "From 2010 to 2020, and 2021 2022 2023 were rough years.",
    "It happened on 05.04.2019 and again on 2019/05/04.",
    "I was fine.it was the 3rd time, the 1990s were my 2nd childhood.",
    "Over 1000000 people, and it cost £2,300,000 or €1500000 in total.",
    "I lost 15-20 lbs in 2-3 months; I weigh 180 lbs and I'm 5'11\".",
    "I have 2 Kids and I've been sober for 365 days, 10 months and 3 days.",
    "Call the lifeline at 1-800-273-8255 any time.",  # toll-free: a service line, kept by default
]


@pytest.mark.parametrize("text", NEGATIVE)
def test_negative_set_unchanged(text):
    assert scrub(text) == (text, Counter())


def test_counts_per_type_in_mixed_text():
    text = ("Email me at a.b@x.com or c@y.org, call (555) 123-4567 or +44 20 7946 0958 or 555.987.6543, "
            "see www.site.com, I live at 221B Baker Street and my SSN is 123-45-6789, account 98765432.")
    new, counts = scrub(text)
    assert counts == Counter({"EMAIL": 2, "PHONE": 3, "URL": 1, "ADDRESS": 1, "ID": 2})
    assert new == ("Email me at [EMAIL] or [EMAIL], call [PHONE] or [PHONE] or [PHONE], see [URL], "
                   "I live at [ADDRESS] and my SSN is [ID], account [ID].")


def test_email_domain_is_not_also_a_url_and_toll_free_flag():
    assert scrub("write to me@reddit.com now") == ("write to [EMAIL] now", Counter({"EMAIL": 1}))
    assert scrub("call 1-800-273-8255", keep_toll_free=False) == ("call [PHONE]", Counter({"PHONE": 1}))


MESSAGES = List({"role": Value("string"), "content": Value("string")})


def test_scrub_dataset_strings_and_message_lists():
    features = Features({"question": Value("string"), "chosen": MESSAGES, "n": Value("int64")})
    ds = Dataset.from_list(
        [
            {"question": "Mail jane@x.com please", "n": 1,
             "chosen": [{"role": "assistant", "content": "Call (555) 123-4567 or visit www.help.org."}]},
            {"question": None, "chosen": [], "n": 2},
            {"question": "Nothing private here, I'm 34.", "n": 3,
             "chosen": [{"role": "user", "content": "I live at 42 Elm St., Apt 3"},
                        {"role": "assistant", "content": "Thanks for sharing."}]},
        ],
        features=features,
    )
    out, totals = scrub_dataset(ds, ["question", "chosen"])
    assert totals == {"EMAIL": 1, "URL": 1, "ID": 0, "PHONE": 1, "ADDRESS": 1}
    assert out.features == features and out.column_names == ds.column_names
    rows = out.to_list()
    assert rows[0]["question"] == "Mail [EMAIL] please"
    assert rows[0]["chosen"] == [{"role": "assistant", "content": "Call [PHONE] or visit [URL]."}]
    assert rows[1] == {"question": None, "chosen": [], "n": 2}
    assert rows[2]["question"] == "Nothing private here, I'm 34."
    assert [m["content"] for m in rows[2]["chosen"]] == ["I live at [ADDRESS]", "Thanks for sharing."]
    assert rows[2]["chosen"][0]["role"] == "user"


def test_scrub_dataset_dict_totals_and_errors():
    dd = DatasetDict({
        "train": Dataset.from_dict({"q": ["a@b.com and c@d.com", "fine"]}),
        "test": Dataset.from_dict({"q": ["SSN 123-45-6789"]}),
    })
    out, totals = scrub_dataset(dd, ["q"])
    assert totals["EMAIL"] == 2 and totals["ID"] == 1 and sum(totals.values()) == 3
    assert out["test"]["q"] == ["SSN [ID]"]
    with pytest.raises(KeyError, match="'missing'|missing"):
        scrub_dataset(dd["train"], ["missing"])
    with pytest.raises(TypeError, match="column 'n'"):
        scrub_dataset(Dataset.from_dict({"n": [1, 2]}), ["n"])
