"""vlbias reproduces WEFE's WEAT numbers on WEFE's own word2vec subset and word sets.

WEFE (Badilla, Bravo-Marquez & Pérez 2020) ships ``weat_w2v____old.txt``, a 347-word, 300-dimensional subset of
the Google News word2vec vectors, and ``WEAT.json``, the word sets of Caliskan et al. (2017). CI installs
``wefe==0.4.1`` for these data files only (its code does not run on numpy 2); they are located through
``importlib.metadata`` and never imported.

The reference numbers below were produced with WEFE 1.0.1's own code, in a scratch virtual environment outside
this repository::

    python -m venv /tmp/wefe-ref
    /tmp/wefe-ref/bin/pip install numpy scipy pandas gensim scikit-learn plotly semantic_version tqdm requests
    /tmp/wefe-ref/bin/pip install --no-deps wefe==1.0.1

    # DATA = the wefe/datasets/data folder of the installed wefe 0.4.1 (the same two files used below)
    kv = gensim.models.KeyedVectors.load_word2vec_format(DATA / "weat_w2v____old.txt", binary=False)
    model = wefe.word_embedding_model.WordEmbeddingModel(kv, "weat_w2v")
    sets = json.load(open(DATA / "WEAT.json"))
    query = wefe.query.Query([sets[x], sets[y]], [sets[a], sets[b]], [x, y], [a, b])
    r = wefe.metrics.WEAT().run_query(query, model, preprocessors=[{}, {"lowercase": True}],
                                      lost_vocabulary_threshold=0.9)
    print(r["weat"], r["effect_size"])

``preprocessors=[{}, {"lowercase": True}]`` looks each word up as written, then lowercased; words found neither
way are dropped (the file lacks many names, hence the lenient threshold). WEFE's ``weat`` is Caliskan's statistic
S(X, Y) = Σ_x s(x, A, B) - Σ_y s(y, A, B). Its ``effect_size`` divides by the population standard deviation
(``np.std`` with ddof=0), where Caliskan et al. and vlbias use the sample standard deviation (ddof=1), so
d_WEFE = d_vlbias * sqrt(n / (n - 1)) with n = |X| + |Y|. (WEFE's p-values are not compared: its permutations
draw target words with replacement.)
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from vlbias.models import load_model
from vlbias.stats.eat import eat
from vlbias.stimuli.eat_tests import read_test_file

# test: (WEFE sets X, Y, A, B), (WEFE 1.0.1 "weat", WEFE 1.0.1 "effect_size")
REFERENCE = {
    "weat1": (("flowers", "insects", "pleasant_5", "unpleasant_5"), (1.407828822173178, 1.5549757534728188)),
    "weat2": (("instruments", "weapons", "pleasant_5", "unpleasant_5"), (1.7476488472893834, 1.6448022692935609)),
    "weat3": (
        ("european_american_names_5", "african_american_names_5", "pleasant_5", "unpleasant_5"),
        (0.27566758465021857, -0.7989392518011039),
    ),
    "weat4": (
        ("european_american_names_7", "african_american_names_7", "pleasant_5", "unpleasant_5"),
        (0.1387153047695756, -0.5370238981617044),
    ),
    "weat5": (
        ("european_american_names_7", "african_american_names_7", "pleasant_9", "unpleasant_9"),
        (0.15357941307593137, -0.13487504872369196),
    ),
    "weat6": (("male_names", "female_names", "career", "family"), (1.2516100800130516, 1.9518473239720835)),
    "weat7": (("math", "arts", "male_terms", "female_terms"), (0.225461410213029, 0.998107902328515)),
    "weat8": (("science", "arts_2", "male_terms_2", "female_terms_2"), (0.35718663118314, 1.2846478914155455)),
    "weat9": (
        ("mental_disease", "physical_disease", "temporary", "permanent"),
        (0.3385917757238661, 1.354404237914638),
    ),
    "weat10": (
        ("young_people_names", "old_people_names", "pleasant_9", "unpleasant_9"),
        (-0.048873504740186036, -0.20469374186927553),
    ),
}


def _wefe_data() -> Path | None:
    try:
        folder = Path(metadata.distribution("wefe").locate_file("wefe/datasets/data/weat_w2v____old.txt")).parent
    except metadata.PackageNotFoundError:
        return None
    return folder if (folder / "WEAT.json").is_file() else None


DATA = _wefe_data()
pytestmark = pytest.mark.skipif(DATA is None, reason="the wefe package (its data files) is not installed")


@pytest.fixture(scope="module")
def w2v():
    return load_model(f"vectors:{DATA / 'weat_w2v____old.txt'}")


def _lookup(encoder, words):
    """WEFE's preprocessors [{}, {"lowercase": True}]: the word as written, else lowercased, else dropped."""
    found = []
    for w in words:
        for candidate in (w, w.lower()):
            if not encoder.missing_texts([candidate]):
                found.append(candidate)
                break
    return encoder.encode_texts(found)


@pytest.mark.parametrize("name", list(REFERENCE))
def test_vlbias_reproduces_wefe(w2v, name):
    sets, (wefe_stat, wefe_d) = REFERENCE[name]
    test = read_test_file(f"{DATA / 'WEAT.json'}#{','.join(sets)}")
    X, Y, A, B = (_lookup(w2v, s.texts) for s in test.sets().values())
    r = eat(X, Y, A, B, permutations=1000, n_bootstrap=0)
    n = len(X) + len(Y)
    assert r.statistic == pytest.approx(wefe_stat, rel=1e-5, abs=1e-6)
    assert r.effect_size * np.sqrt(n / (n - 1)) == pytest.approx(wefe_d, rel=1e-5)
