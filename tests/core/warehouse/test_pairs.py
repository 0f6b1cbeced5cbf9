"""The pairs view matches FFT and PEFT on the same setup; hand-checked against the sources' tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.warehouse import Filters, Warehouse, count_pairs, pairs

from .conftest import count, good_row, write_csv


def _one(wh: Warehouse, where: str) -> dict[str, object]:
    frame = wh.cursor().execute(f"SELECT * FROM pairs WHERE {where}").df()
    assert len(frame) == 1, frame
    return frame.iloc[0].to_dict()


def test_roberta_base_sst2_lora_vs_ft_from_the_lora_paper(ro: Warehouse) -> None:
    pair = _one(
        ro, "source LIKE 'LoRA (Hu%' AND model = 'RoBERTa-base' AND task = 'GLUE SST-2' AND method_raw = 'LoRA'"
    )
    assert pair["peft_value"] == 95.1 and pair["fft_value"] == 94.8
    assert pair["gap"] == pytest.approx(0.3)
    assert pair["fft_method_raw"] == "FT (full fine-tuning)*" and pair["fft_quoted"]
    assert pair["rank"] == 8 and pair["targets"] == "q,v"


def test_pairs_count_and_materialisation_agree(ro: Warehouse) -> None:
    assert count(ro, "pairs") == count(ro, "pair_rows") == ro.stats()["pairs"] == 1119
    ((differences,),) = (
        ro.cursor().execute("SELECT count(*) FROM (SELECT * FROM pairs EXCEPT ALL SELECT * FROM pair_rows)").fetchall()
    )
    assert differences == 0


def test_every_peft_row_of_a_source_with_fft_is_paired(ro: Warehouse) -> None:
    # DoRA, LLM-Adapters and QLoRA's Table 5 have no FFT row: those 220 PEFT rows cannot pair.
    ((unpaired,),) = (
        ro.cursor()
        .execute(
            """
        SELECT count(*) FROM results_wide w
        WHERE method_family NOT IN ('full', 'baseline')
          AND EXISTS (SELECT 1 FROM results_wide f WHERE f.method_family = 'full' AND f.source_id = w.source_id)
          AND NOT EXISTS (SELECT 1 FROM pairs p WHERE p.peft_result_id = w.result_id)
        """
        )
        .fetchall()
    )
    assert unpaired == 2  # Sun et al. 2023: LoRA on LLaMA-13B and at 4M examples, which have no FFT row
    ((peft,),) = (
        ro.cursor()
        .execute("SELECT count(*) FROM results_wide WHERE method_family NOT IN ('full', 'baseline')")
        .fetchall()
    )
    assert peft - 1119 - 2 == 152 + 56 + 12


def test_the_sources_own_replication_is_preferred_over_a_quoted_number(ro: Warehouse) -> None:
    pair = _one(ro, "source LIKE 'QLoRA%' AND model = 'T5-80M' AND method_raw = 'QLoRA NF4+DQ'")
    assert pair["fft_method_raw"] == "Full fine-tuning BF16 (replication)" and not pair["fft_quoted"]
    assert pair["fft_value"] == 40.0 and pair["fft_alt_value_100"] == 40.1 and pair["fft_candidates"] == 2
    only = _one(ro, "source LIKE 'QLoRA%' AND model = 'T5-11B' AND method_raw = 'QLoRA NF4+DQ'")
    assert only["fft_method_raw"] == "Full fine-tuning BF16 (reported)" and only["fft_candidates"] == 1


def test_epochs_and_data_size_keep_setups_apart(ro: Warehouse) -> None:
    # Biderman et al. Table S5: the same 110K examples at 1..16 epochs; each LoRA row pairs with its epoch.
    frame = (
        ro.cursor()
        .execute(
            "SELECT epochs, peft_value, fft_value FROM pairs WHERE source_table = 'Table S5' "
            "AND method_raw = 'LoRA r=16 (all modules, alpha=2r)' ORDER BY epochs"
        )
        .df()
    )
    assert frame["epochs"].tolist() == [1, 2, 4, 8, 16]
    assert frame["fft_value"].tolist() == [0.302, 0.464, 0.47, 0.497, 0.416]
    # GPT-3 low-data MNLI: LoRA at n = 100 pairs with FFT at n = 100 (60.2), not with the full-data 89.5.
    pair = _one(ro, "source_table LIKE 'Table 16%' AND method_raw = 'LoRA' AND train_examples = 100")
    assert pair["fft_value"] == 60.2 and pair["gap"] == pytest.approx(63.8 - 60.2)


def test_fraction_metrics_are_compared_on_the_0_100_scale(ro: Warehouse) -> None:
    pair = _one(ro, "source_table = 'Table S5' AND method_raw = 'LoRA r=16 (all modules, alpha=2r)' AND epochs = 1")
    assert (pair["peft_value_100"], pair["fft_value_100"]) == (19.7, 30.2)
    assert pair["gap"] == pytest.approx(-10.5)
    assert pair["metric_kind"] == "target"
    forgetting = count_pairs(ro, Filters(metric_kinds=["forgetting"]))
    assert forgetting == 24 + 24 + 15 + 15 + 9 + 62  # Tables S2, S4, S6, S8, S13; PEFT's benchmark


def test_distribution_is_part_of_the_pair_key(ro: Warehouse) -> None:
    ood = pairs(ro, Filters(distributions=["ood"]))
    assert len(ood) > 0 and set(ood["distribution"]) == {"ood"}
    pair = _one(ro, "source LIKE 'Prompt Tuning%' AND task = 'Train SQuAD -> eval TextbookQA (Book)'")
    assert pair["distribution"] == "ood" and pair["gap"] == pytest.approx(66.8 - 54.3)


def test_an_import_adding_an_fft_row_creates_pairs(wh: Warehouse, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "lab.csv", [good_row(), good_row(method="Full fine-tuning", value="92.0")])
    wh.import_file(path)
    pair = _one(wh, "source = 'My lab notebook'")
    assert pair["gap"] == pytest.approx(-0.5) and pair["origin"] == "user"
    assert count(wh, "pairs") == count(wh, "pair_rows") == 1120


def test_later_imports_refresh_the_pairs_of_existing_setups(wh: Warehouse, tmp_path: Path) -> None:
    wh.import_file(write_csv(tmp_path / "peft.csv", [good_row()]))
    assert count(wh, "pair_rows") == 1119  # a LoRA row alone has nothing to pair with
    wh.import_file(write_csv(tmp_path / "quoted.csv", [good_row(method="FT (full fine-tuning)*", value="93.0")]))
    quoted = _one(wh, "source = 'My lab notebook'")
    assert quoted["fft_quoted"] and quoted["gap"] == pytest.approx(-1.5)
    wh.import_file(write_csv(tmp_path / "own.csv", [good_row(method="Full fine-tuning", value="92.0")]))
    own = _one(wh, "source = 'My lab notebook'")
    assert not own["fft_quoted"] and own["gap"] == pytest.approx(-0.5)
    assert own["fft_candidates"] == 2 and own["fft_alt_value_100"] == 93.0
    ((differences,),) = (
        wh.cursor().execute("SELECT count(*) FROM (SELECT * FROM pairs EXCEPT ALL SELECT * FROM pair_rows)").fetchall()
    )
    assert differences == 0 and count(wh, "pair_rows") == 1120
