"""The data step's sample: the record under "First conversation" is the one "What the model learns" masks,
non-ASCII text shows as itself (not U+FFFD halves of split characters), and the tokenizer is named."""

from __future__ import annotations

import json
from pathlib import Path

from .helpers import screen_text, wait_until

RECORDS = [("用一句话介绍北京。", "北京是中国的首都，有三千多年的历史。"),
           ("Name a colour of the sky.", "Blue on a clear day."),
           ("Name a fruit.", "Apple."), ("Name a tree.", "Oak."), ("Name a river.", "The Nile.")]


async def test_first_conversation_is_the_masked_one_and_chinese_shows_whole(make_app, tmp_path: Path) -> None:
    from ftwiz.tui.screens.data import DataScreen

    data = tmp_path / "zh.jsonl"
    data.write_text("".join(json.dumps({"instruction": q, "output": a}, ensure_ascii=False) + "\n"
                            for q, a in RECORDS), encoding="utf-8")
    app = make_app(offer_resume=False)
    async with app.run_test(size=(120, 60)) as pilot:
        recipe = app.load_recipe()
        app.state.recipe = recipe.model_copy(update={"dataset": [str(data)]})
        app.goto("data")
        await wait_until(pilot, lambda: isinstance(app.screen, DataScreen) and app.screen.query("#preview"),
                         what="data")
        await wait_until(pilot, lambda: "What the model learns" in screen_text(app) or "no preview" in screen_text(app),
                         timeout=120, what="preview")
        text = screen_text(app)
        first, learns = text.split("What the model learns", 1)
        assert "First conversation" in first and RECORDS[0][1] in first
        assert "from the first conversation" in learns and RECORDS[0][0] in learns and RECORDS[0][1] in learns
        assert "\ufffd" not in text
        assert "tokenizer" in learns and "tokens)" in learns  # which tokenizer measured the lengths
