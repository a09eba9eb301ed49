"""`ftwiz eval` of a model trained with ``template: chatml`` on a base whose vocabulary has no ``<|im_end|>``
token (TinyLlama's real tokenizer): training ends every answer with the TEXT ``<|im_end|>``, so a model that
learned it writes that text and then, with no token to stop on, a made-up next turn. Eval scored that run-on
against the reference (ROUGE/BLEU of "Paris<|im_end|>\\n<|im_start|>user ..." vs "Paris").

Oracle: the answer as training wrote it (``apply_chat_template``: the content before the end of turn). The
model is a real tiny Llama with the real tokenizer; only its choice of tokens is scripted to what a model that
learned the chatml ending writes.
"""

from __future__ import annotations

import pytest
from chatml_llama import chatml_on_tinyllama_folder


@pytest.fixture(scope="module")
def chatml_engine(tmp_path_factory: pytest.TempPathFactory):
    from ftwiz.core.evaluate.backends import HFEngine
    from ftwiz.core.evaluate.prompts import renderer_for_tokenizer

    folder = tmp_path_factory.mktemp("tinyllama-chatml-eval")
    tok, model = chatml_on_tinyllama_folder(folder)
    trained = tok.apply_chat_template([{"role": "user", "content": "Capital of France?"},
                                       {"role": "assistant", "content": "Paris"},
                                       {"role": "user", "content": "And of Italy?"}], tokenize=False)
    written = trained[trained.index("Paris"):]  # the answer, its text end of turn, the next turn: a run-on

    class LearnedChatml(HFEngine):
        def greedy(self, prompt_ids, max_new_tokens, stop_ids):
            return self.tokenize(written)[:max_new_tokens]

    return tok, LearnedChatml(model=model, tokenizer=tok, path=str(folder)), renderer_for_tokenizer(tok)


def test_eval_scores_the_answer_up_to_the_text_end_of_turn(chatml_engine) -> None:
    from ftwiz.core.evaluate.backends import stop_token_ids
    from ftwiz.core.evaluate.runner import Contender, _answer_all
    from ftwiz.core.evaluate.samples import EvalSample

    tok, engine, renderer = chatml_engine
    assert "<|im_end|>" not in tok.get_vocab()  # plain text here: no stop id can end generation on it
    prompt = [{"role": "user", "content": "Capital of France?"}]
    sample = EvalSample(prompt=prompt, reference="Paris", conversation=[*prompt, {"role": "assistant",
                                                                                   "content": "Paris"}])
    contender = Contender(label="tuned", spec=None, engine=engine, renderer=renderer)
    stops = set(stop_token_ids(engine, [renderer.eos_token, tok.eos_token]))
    outputs, _, _ = _answer_all(contender, [sample], max_new_tokens=64, cutoff=256, stop_ids=stops, events=None,
                                done=0, total=1)
    assert outputs == ["Paris"]  # not "Paris<|im_end|>\n<|im_start|>user\nAnd of Italy?..."
