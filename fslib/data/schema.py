"""The columns of a loaded split, per kind of task (see fslib.data)."""

from datasets import Features, List, Value

FEATURES = {
    "tagging": Features({"tokens": List(Value("string")), "tags": List(Value("string")), "lang": Value("string")}),
    "classification": Features({"premise": Value("string"), "hypothesis": Value("string"),
                                "label": Value("string"), "lang": Value("string")}),
    "qa": Features({"id": Value("string"), "context": Value("string"), "question": Value("string"),
                    "answers": {"text": List(Value("string")), "answer_start": List(Value("int32"))},
                    "lang": Value("string")}),
}
