"""Hostile skops files given to ``flagaudit audit --model``: none of them may run its payload.

A skops file is a zip holding ``schema.json``: a tree of nodes, each naming a type or function
(``__module__``, ``__class__``) and how skops rebuilds it (``__loader__``). The loader flagaudit
had trusted every name under ``sklearn.``, ``numpy.``, ``scipy.sparse.``, ``builtins.`` and
``collections.``: that is ``builtins.eval``, ``exec``, ``open``, ``__import__``, ``getattr``,
every NumPy function and every scikit-learn function, enough to run any code on load or on
``predict``. Each file here is built from real objects with ``skops.io.dumps`` or by writing the
schema by hand, carries a payload that would write a marker file, and must be refused with one
line (an :class:`InputError` naming the file and what it asked for) before anything in it runs.

Benign pipelines of the kind the tests and docs use must still load and flag exactly as the
fitted model itself does; a model that is not a classifier is refused with one line.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

from auditcore.errors import InputError

sio = pytest.importorskip("skops.io")

from flagaudit.systems import SkopsModel, load_skops

TEXTS = ["I will kill you", "we will shoot them all", "lovely day", "going to the rally", "I will hurt them",
         "pray for peace", "they must die", "my visa arrived", "te voy a matar", "que tengas buen día",
         "la migra se lo llevó", "this exam is killing me"]
LABELS = [1, 1, 0, 0, 1, 0, 1, 0, 1, 0, 0, 0]


# ----------------------------------------------------------------------------- schema builders

def _protocol() -> int:
    from skops.io._protocol import PROTOCOL
    return PROTOCOL


def write_schema(path: Path, root: dict, extra_files: dict | None = None) -> Path:
    """A skops zip whose ``schema.json`` is ``root`` (plus the protocol), as an attacker writes it."""
    import skops

    schema = dict(root, protocol=_protocol(), _skops_version=skops.__version__)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("schema.json", json.dumps(schema))
        for name, data in (extra_files or {}).items():
            z.writestr(name, data)
    return path


def j(value) -> dict:
    """A JSON value (str, number, bool, None)."""
    return {"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode", "content": json.dumps(value),
            "is_json": True}


def tup(*items) -> dict:
    return {"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode",
            "content": [x if isinstance(x, dict) else j(x) for x in items]}


def lst(*items) -> dict:
    return {"__class__": "list", "__module__": "builtins", "__loader__": "ListNode",
            "content": [x if isinstance(x, dict) else j(x) for x in items]}


def ref(dotted: str, loader: str = "TypeNode") -> dict:
    """A reference to a type or function by name (skops rebuilds it by importing the name)."""
    module, _, name = dotted.rpartition(".")
    return {"__class__": name, "__module__": module, "__loader__": loader}


def call(dotted: str, *args) -> dict:
    """``dotted(*args)``, evaluated while the file loads (skops' ConstructorFromReduceNode)."""
    module, _, name = dotted.rpartition(".")
    return {"__class__": name, "__module__": module, "__loader__": "ConstructorFromReduceNode",
            "content": tup(*args)}


_CARRIER: list[bytes] = []


def _carrier_zip() -> zipfile.ZipFile:
    """One fitted text pipeline, dumped once (its .npy member names come from object ids)."""
    if not _CARRIER:
        _CARRIER.append(sio.dumps(_fit("tfidf_lr")))
    return zipfile.ZipFile(io.BytesIO(_CARRIER[0]))


def in_pipeline(gadget: dict) -> dict:
    """A fitted text pipeline's schema with ``gadget`` as the value of one of its attributes: the
    old loader rebuilt the gadget (running it) and then gave a model that predicts normally."""
    schema = json.loads(_carrier_zip().read("schema.json"))
    schema["content"]["content"]["memory"] = gadget
    return schema


def carrier_files() -> dict:
    """The .npy members of the fitted pipeline's zip, which ``in_pipeline``'s schema refers to."""
    z = _carrier_zip()
    return {n: z.read(n) for n in z.namelist() if n != "schema.json"}


# ----------------------------------------------------------------------------- models

def _fit(kind: str, labels=None):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.feature_extraction.text import (
        CountVectorizer,
        HashingVectorizer,
        TfidfTransformer,
        TfidfVectorizer,
    )
    from sklearn.linear_model import LogisticRegression, RidgeClassifier, SGDClassifier
    from sklearn.naive_bayes import ComplementNB, MultinomialNB
    from sklearn.pipeline import make_pipeline, make_union
    from sklearn.svm import SVC, LinearSVC

    makers = {
        "tfidf_lr": lambda: make_pipeline(TfidfVectorizer(), LogisticRegression()),
        "count_mnb": lambda: make_pipeline(CountVectorizer(), MultinomialNB()),
        "tfidf_linearsvc": lambda: make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LinearSVC()),
        "tfidf_sgd_hinge": lambda: make_pipeline(TfidfVectorizer(), SGDClassifier(random_state=0)),
        "tfidf_sgd_log": lambda: make_pipeline(TfidfVectorizer(), SGDClassifier(loss="log_loss", random_state=0)),
        "union_lr": lambda: make_pipeline(make_union(TfidfVectorizer(),
                                                     TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4))),
                                          LogisticRegression()),
        "hashing_ridge": lambda: make_pipeline(HashingVectorizer(n_features=2 ** 12), TfidfTransformer(),
                                               RidgeClassifier()),
        "count_cnb": lambda: make_pipeline(CountVectorizer(), ComplementNB()),
        "calibrated_svc": lambda: make_pipeline(TfidfVectorizer(), CalibratedClassifierCV(LinearSVC(), cv=2)),
        "tfidf_svc": lambda: make_pipeline(TfidfVectorizer(), SVC(kernel="linear")),
    }
    return makers[kind]().fit(TEXTS, LABELS if labels is None else labels)


def _marker(tmp_path: Path) -> Path:
    return tmp_path / "PWNED"


def _code(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').write('pwned')"


class _PickledPayload:
    """What a malicious pickle carries: unpickling it calls ``exec(code)``."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self):
        return (exec, (self.code,))


# Each gadget: name -> function(tmp_path, marker) -> path of a hostile skops file. The names the
# file asks for are all ones the old loader trusted, unless the gadget's name says "direct".

def g_functiontransformer_chain(tmp_path, marker):
    """numpy.full_like -> builtins.min -> builtins.eval as FunctionTransformers, run by predict()."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    final = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    model = make_pipeline(FunctionTransformer(np.full_like, kw_args={"fill_value": _code(marker), "dtype": object}),
                          FunctionTransformer(min), FunctionTransformer(eval), final)
    path = tmp_path / "ft_chain.skops"
    sio.dump(model, path)
    return path


def g_functiontransformer_harmless(tmp_path, marker):
    """A FunctionTransformer is refused whatever it calls: it exists to call arbitrary functions."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    model = make_pipeline(FunctionTransformer(np.log1p), _fit("tfidf_lr"))
    path = tmp_path / "ft_log.skops"
    sio.dump(model, path)
    return path


def g_eval(tmp_path, marker):
    return write_schema(tmp_path / "eval.skops", in_pipeline(call("builtins.eval", _code(marker))), carrier_files())


def g_exec(tmp_path, marker):
    return write_schema(tmp_path / "exec.skops", in_pipeline(call("builtins.exec", _code(marker))), carrier_files())


def g_compile(tmp_path, marker):
    gadget = call("builtins.exec", call("builtins.compile", _code(marker), "<model>", "exec"))
    return write_schema(tmp_path / "compile.skops", in_pipeline(gadget), carrier_files())


def g_open(tmp_path, marker):
    return write_schema(tmp_path / "open.skops", in_pipeline(call("builtins.open", str(marker), "w")), carrier_files())


def g_dict_key_type_exec(tmp_path, marker):
    """A dict's key types are called on its keys when it is rebuilt: exec as a 'key type'."""
    gadget = {"__class__": "dict", "__module__": "builtins", "__loader__": "DictNode",
              "content": {_code(marker): j(1)}, "key_types": lst(ref("builtins.exec"))}
    return write_schema(tmp_path / "dictkey.skops", in_pipeline(gadget), carrier_files())


def _os_module():
    return call("builtins.__import__", "os")


def g_import_getattr_os_system(tmp_path, marker):
    """list(map(getattr(__import__('os'), 'system'), ['touch MARKER'])): builtins names only."""
    system = call("builtins.getattr", _os_module(), "system")
    gadget = call("builtins.list", call("builtins.map", system, lst(f"touch '{marker}'")))
    return write_schema(tmp_path / "os_system.skops", in_pipeline(gadget), carrier_files())


def g_posix_system_direct(tmp_path, marker):
    return write_schema(tmp_path / "posix.skops", in_pipeline(call("posix.system", f"touch '{marker}'")),
                        carrier_files())


def g_subprocess_popen(tmp_path, marker):
    """subprocess.Popen reached through __import__ and getattr, called through map."""
    popen = call("builtins.getattr", call("builtins.__import__", "subprocess"), "Popen")
    gadget = call("builtins.list", call("builtins.map", popen, lst(lst("touch", str(marker)))))
    return write_schema(tmp_path / "popen.skops", in_pipeline(gadget), carrier_files())


def g_subprocess_popen_direct(tmp_path, marker):
    gadget = call("subprocess.Popen", lst("touch", str(marker)))
    return write_schema(tmp_path / "popen_direct.skops", in_pipeline(gadget), carrier_files())


def g_operator_methodcaller(tmp_path, marker):
    """operator.methodcaller('system', 'touch MARKER') applied to the os module."""
    mc_class = call("builtins.getattr", call("builtins.__import__", "operator"), "methodcaller")
    mc = call("builtins.next", call("builtins.map", mc_class, lst("system"), lst(f"touch '{marker}'")))
    gadget = call("builtins.list", call("builtins.map", mc, lst(_os_module())))
    return write_schema(tmp_path / "methodcaller.skops", in_pipeline(gadget), carrier_files())


def g_operator_methodcaller_direct(tmp_path, marker):
    """skops' own node for operator.methodcaller."""
    mc = {"__class__": "methodcaller", "__module__": "operator", "__loader__": "OperatorFuncNode",
          "attrs": tup("system", f"touch '{marker}'")}
    gadget = call("builtins.list", call("builtins.map", mc, lst(_os_module())))
    return write_schema(tmp_path / "methodcaller_direct.skops", in_pipeline(gadget), carrier_files())


def g_functools_partial(tmp_path, marker):
    """list(iter(partial(exec, CODE), None)): iter() calls the partial until it returns None."""
    partial_class = call("builtins.getattr", call("builtins.__import__", "functools"), "partial")
    p = call("builtins.next", call("builtins.map", partial_class, lst(ref("builtins.exec")), lst(_code(marker))))
    gadget = call("builtins.list", call("builtins.iter", p, None))
    return write_schema(tmp_path / "partial.skops", in_pipeline(gadget), carrier_files())


def g_functools_partial_direct(tmp_path, marker):
    """skops' own node for functools.partial."""
    p = {"__class__": "partial", "__module__": "functools", "__loader__": "PartialNode",
         "content": {"func": ref("builtins.exec"), "args": tup(_code(marker)), "kwds": {
             "__class__": "dict", "__module__": "builtins", "__loader__": "DictNode", "content": {},
             "key_types": lst()}, "namespace": j(None)}}
    gadget = call("builtins.list", call("builtins.iter", p, None))
    return write_schema(tmp_path / "partial_direct.skops", in_pipeline(gadget), carrier_files())


def g_numpy_load_pickle(tmp_path, marker):
    """numpy.load(FILE, None, True): allow_pickle=True unpickles whatever FILE holds."""
    pkl = tmp_path / "weights.npy"
    pkl.write_bytes(pickle.dumps(_PickledPayload(_code(marker))))
    return write_schema(tmp_path / "npload.skops", in_pipeline(call("numpy.load", str(pkl), None, True)),
                        carrier_files())


def g_numpy_fromfunction(tmp_path, marker):
    """numpy.fromfunction calls a Pipeline's transform (a FunctionTransformer chain) while loading."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    chain = make_pipeline(FunctionTransformer(np.full_like, kw_args={"fill_value": _code(marker), "dtype": object}),
                          FunctionTransformer(min), FunctionTransformer(eval))
    chain_schema = json.loads(zipfile.ZipFile(io.BytesIO(sio.dumps(chain))).read("schema.json"))
    for key in ("protocol", "_skops_version"):
        chain_schema.pop(key)
    method = {"__class__": "Pipeline", "__module__": "sklearn.pipeline", "__loader__": "MethodNode",
              "content": {"func": "transform", "obj": chain_schema}}
    gadget = call("numpy.fromfunction", method, tup(1))
    return write_schema(tmp_path / "fromfunction.skops", in_pipeline(gadget), carrier_files())


def g_numpy_savetxt(tmp_path, marker):
    """Any NumPy function is a way in: numpy.savetxt writes a file while the model loads."""
    return write_schema(tmp_path / "savetxt.skops", in_pipeline(call("numpy.savetxt", str(marker), lst(1.0))),
                        carrier_files())


def g_ndarray_node_named_exec(tmp_path, marker):
    """An array node whose class is builtins.exec: skops calls the class on the loaded array."""
    npy = io.BytesIO()
    np.save(npy, np.array(_code(marker).encode()), allow_pickle=False)
    gadget = {"__class__": "exec", "__module__": "builtins", "__loader__": "NdArrayNode", "type": "numpy",
              "file": "x.npy"}
    files = dict(carrier_files(), **{"x.npy": npy.getvalue()})
    return write_schema(tmp_path / "ndarray_exec.skops", in_pipeline(gadget), files)


def g_sklearn_function(tmp_path, marker):
    """A scikit-learn *function* that runs Python code (in a subprocess)."""
    gadget = call("sklearn.utils._testing.assert_run_python_script_without_output", _code(marker))
    return write_schema(tmp_path / "sklearn_func.skops", in_pipeline(gadget), carrier_files())


def g_sklearn_function_as_type(tmp_path, marker):
    """The same function named as a 'type' and called through map."""
    fn = ref("sklearn.utils._testing.assert_run_python_script_without_output")
    gadget = call("builtins.list", call("builtins.map", fn, lst(_code(marker))))
    return write_schema(tmp_path / "sklearn_func_type.skops", in_pipeline(gadget), carrier_files())


def g_collections_via_builtins(tmp_path, marker):
    """collections.OrderedDict whose key type is builtins.exec (as a function node)."""
    gadget = {"__class__": "OrderedDict", "__module__": "collections", "__loader__": "DictNode",
              "content": {_code(marker): j(1)}, "key_types": lst(ref("builtins.exec", "FunctionNode"))}
    return write_schema(tmp_path / "ordered.skops", in_pipeline(gadget), carrier_files())


GADGETS = {
    "functiontransformer_chain": (g_functiontransformer_chain, ["FunctionTransformer", "builtins.eval"]),
    "functiontransformer_harmless": (g_functiontransformer_harmless, ["FunctionTransformer"]),
    "eval": (g_eval, ["builtins.eval"]),
    "exec": (g_exec, ["builtins.exec"]),
    "compile": (g_compile, ["builtins.compile"]),
    "open": (g_open, ["builtins.open"]),
    "dict_key_type_exec": (g_dict_key_type_exec, ["builtins.exec"]),
    "import_getattr_os_system": (g_import_getattr_os_system, ["builtins.__import__", "builtins.getattr"]),
    "posix_system_direct": (g_posix_system_direct, ["posix.system"]),
    "subprocess_popen": (g_subprocess_popen, ["builtins.__import__", "builtins.getattr"]),
    "subprocess_popen_direct": (g_subprocess_popen_direct, ["subprocess.Popen"]),
    "operator_methodcaller": (g_operator_methodcaller, ["builtins.__import__", "builtins.getattr"]),
    "operator_methodcaller_direct": (g_operator_methodcaller_direct, ["operator.methodcaller"]),
    "functools_partial": (g_functools_partial, ["builtins.__import__", "builtins.getattr"]),
    "functools_partial_direct": (g_functools_partial_direct, ["functools.partial"]),
    "numpy_load_pickle": (g_numpy_load_pickle, ["numpy.load"]),
    "numpy_fromfunction": (g_numpy_fromfunction, ["numpy.fromfunction"]),
    "numpy_savetxt": (g_numpy_savetxt, ["numpy.savetxt"]),
    "ndarray_node_named_exec": (g_ndarray_node_named_exec, ["builtins.exec"]),
    "sklearn_function": (g_sklearn_function, ["assert_run_python_script_without_output"]),
    "sklearn_function_as_type": (g_sklearn_function_as_type, ["assert_run_python_script_without_output"]),
    "collections_key_type": (g_collections_via_builtins, ["builtins.exec"]),
}


def _assert_refused(path: Path, marker: Path, names) -> str:
    with pytest.raises(InputError) as info:
        model = SkopsModel.from_file(path)
        model.run(TEXTS)  # the old loader accepted these: the payload of a predict-time gadget runs here
    message = str(info.value)
    assert "\n" not in message, message
    assert str(path) in message, message
    assert any(n in message for n in names), message
    assert not marker.exists(), "the payload ran"
    return message


@pytest.mark.parametrize("name", list(GADGETS))
def test_hostile_model_is_refused_and_never_runs(tmp_path, name):
    maker, names = GADGETS[name]
    marker = _marker(tmp_path)
    path = maker(tmp_path, marker)
    assert not marker.exists()
    _assert_refused(path, marker, names)
    # the bare loader, which the CLI and library share, refuses it too
    with pytest.raises(InputError):
        load_skops(path)
    assert not marker.exists()


def test_untrusted_type_refusal_names_a_few_types(tmp_path):
    marker = _marker(tmp_path)
    path = g_import_getattr_os_system(tmp_path, marker)
    message = _assert_refused(path, marker, ["builtins"])
    for name in ("builtins.__import__", "builtins.getattr", "builtins.list", "builtins.map"):
        assert name in message, message


def test_hostile_schema_variants_are_refused(tmp_path):
    """Older protocols, unknown loaders, smuggled bit-generator names and malformed schemas."""
    marker = _marker(tmp_path)
    cases = {
        # the protocol decides which node classes skops uses: an old one must be no way around
        "old_protocol.skops": dict(in_pipeline(call("builtins.eval", _code(marker))), protocol=0),
        "unknown_loader.skops": in_pipeline({"__class__": "eval", "__module__": "builtins",
                                             "__loader__": "NoSuchNode"}),
        "cached_node.skops": in_pipeline({"__class__": "eval", "__module__": "builtins", "__loader__": "CachedNode",
                                          "__id__": 1}),
        "tree_node.skops": in_pipeline({"__class__": "Tree", "__module__": "sklearn.tree._tree",
                                        "__loader__": "TreeNode", "__reduce__": {"args": tup()},
                                        "content": j(None)}),
    }
    for name, schema in cases.items():
        path = tmp_path / name
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("schema.json", json.dumps(schema))
            for member, data in carrier_files().items():
                z.writestr(member, data)
        with pytest.raises(InputError) as info:
            SkopsModel.from_file(path)
        assert "\n" not in str(info.value) and str(path) in str(info.value), str(info.value)
    for name, data in {"not_json.skops": b"{nope", "no_nodes.skops": b"[1, 2]"}.items():
        path = tmp_path / name
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("schema.json", data)
        with pytest.raises(InputError, match="not a skops model file"):
            SkopsModel.from_file(path)
    assert not marker.exists()


# ----------------------------------------------------------------------------- the command line

def _run_cli(*args, timeout=300):
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), COLUMNS="120")
    return subprocess.run([sys.executable, "-m", "flagaudit", *map(str, args)], capture_output=True, text=True, check=False,
                          env=env, timeout=timeout)


def _assert_cli_refuses(tmp_path, path, marker, message_part):
    out = tmp_path / "res"
    proc = _run_cli("audit", "--suite", "benign-traps", "--model", path, "--out", out, "--n-boot", "50")
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert message_part in lines[0] and str(path) in lines[0], lines[0]
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not out.exists() and not list(tmp_path.glob(".res*"))
    assert not marker.exists(), "the payload ran"


@pytest.mark.parametrize("name", ["functiontransformer_chain", "eval", "import_getattr_os_system", "numpy_load_pickle"])
def test_cli_refuses_hostile_model(tmp_path, name):
    maker, names = GADGETS[name]
    marker = _marker(tmp_path)
    path = maker(tmp_path, marker)
    _assert_cli_refuses(tmp_path, path, marker, names[-1])


def test_cli_refuses_a_regressor(tmp_path):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline

    path = tmp_path / "ridge.skops"
    sio.dump(make_pipeline(TfidfVectorizer(), Ridge()).fit(TEXTS, LABELS), path)
    _assert_cli_refuses(tmp_path, path, _marker(tmp_path), "not a classifier")


# ----------------------------------------------------------------------------- what must still work

def test_regressor_is_refused_with_one_line(tmp_path):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LinearRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVR

    for i, reg in enumerate([Ridge(), LinearSVR(), LinearRegression()]):
        path = tmp_path / f"reg{i}.skops"
        sio.dump(make_pipeline(TfidfVectorizer(), reg).fit(TEXTS, LABELS), path)
        with pytest.raises(InputError, match="not a classifier") as info:
            SkopsModel.from_file(path)
        assert "\n" not in str(info.value) and str(path) in str(info.value)
    # a bare regressor, not in a pipeline
    path = tmp_path / "bare.skops"
    sio.dump(Ridge().fit([[0.0], [1.0]], [0.0, 1.0]), path)
    with pytest.raises(InputError, match="not a classifier"):
        SkopsModel.from_file(path)


BENIGN = ["tfidf_lr", "count_mnb", "tfidf_linearsvc", "tfidf_sgd_hinge", "tfidf_sgd_log", "union_lr",
          "hashing_ridge", "count_cnb", "calibrated_svc", "tfidf_svc"]


@pytest.mark.parametrize("kind", BENIGN)
def test_benign_pipelines_load_and_flag_exactly_as_fitted(tmp_path, kind):
    from flagaudit.suites import load_suites

    model = _fit(kind)
    path = tmp_path / f"{kind}.skops"
    sio.dump(model, path)
    loaded = SkopsModel.from_file(path)
    texts = load_suites(["benign-traps"])[0]["text"].tolist()
    flags = loaded.run(texts)
    assert flags.flagged.tolist() == (model.predict(texts) == 1).tolist()
    if hasattr(model, "predict_proba"):
        assert np.array_equal(flags.score, model.predict_proba(texts)[:, 1]) and flags.threshold == 0.5
    else:
        assert np.array_equal(flags.score, model.decision_function(texts)) and flags.threshold == 0.0


def test_string_labels_and_numpy_random_state_still_load(tmp_path):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import SGDClassifier
    from sklearn.pipeline import make_pipeline

    labelled = _fit("tfidf_lr", labels=["hateful" if v else "none" for v in LABELS])
    seeded = make_pipeline(TfidfVectorizer(), SGDClassifier(random_state=np.random.RandomState(0))).fit(TEXTS, LABELS)
    for name, model in {"labels": labelled, "seeded": seeded}.items():
        path = tmp_path / f"{name}.skops"
        sio.dump(model, path)
        flags = SkopsModel.from_file(path).run(TEXTS)
        assert flags.flagged.tolist() == SkopsModel(model).run(TEXTS).flagged.tolist()
