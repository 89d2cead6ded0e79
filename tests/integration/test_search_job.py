"""A budget-driven search as a background job (the Variants page's Search form): the runner records each trial
in the progress, the search's outcome in the manifest, and every measured variant as a row whose file is in the
job folder."""

from optimizer.jobs.runner import JobRequest, run_job, submit
from optimizer.jobs.store import RunStore
from optimizer.report.recommend import Budget
from optimizer.run.options import RunOptions
from optimizer.search import SearchRequest
from tests.conftest import DIGITS_DATA, DIGITS_MODEL


def test_a_search_job_records_its_trials_the_pareto_set_and_the_variant_to_ship(tmp_path):
    store = RunStore(tmp_path / "runs")
    search = SearchRequest(Budget.of(120, None, 2), trials=3, batch=3, kinds=("float16", "dynamic_range", "int8"))
    run_id = submit(store, JobRequest(model=str(DIGITS_MODEL), data=str(DIGITS_DATA),
                                      options=RunOptions(timed_runs=50), search=search.to_dict()))
    assert store.get(run_id)["options"]["search"]["budget"]["max_size_bytes"] == 120 * 1024
    assert store.claim_next("test", max_running=1)["id"] == run_id
    run_job(store, run_id)

    record = store.get(run_id)
    assert record["status"] == "done", record["error"]
    outcome = record["manifest"]["search"]
    assert len(outcome["trials"]) == 3 and outcome["request"]["trials"] == 3
    assert len(record["progress"]["search"]["done"]) == 3  # one progress entry per trial, as it finished
    names = [row["variant"] for row in record["rows"]]
    assert names[0] == "float32" and len(names) == len(set(names)) >= 2
    assert outcome["pareto"] and set(outcome["pareto"]) <= set(names)
    sizes = {row["variant"]: row["size_bytes"] for row in record["rows"]}
    if outcome["recommendation"]:  # the digits model's int8 and dynamic-range files fit 120 KB
        assert sizes[outcome["recommendation"]] <= 120 * 1024
    else:
        assert outcome["shortfall"], outcome
    for row in record["rows"]:  # downloads work: each file's path is relative to the job folder
        assert (store.job_dir(run_id) / row["path"]).is_file(), row["path"]


def test_a_search_request_with_a_bad_budget_is_refused_on_submit(tmp_path):
    import pytest

    from optimizer.errors import InvalidOption

    store = RunStore(tmp_path / "runs")
    with pytest.raises(InvalidOption, match="search request: expected budget"):
        submit(store, JobRequest(model=str(DIGITS_MODEL), data=str(DIGITS_DATA),
                                 search={"budget": {"max_size_kb": 5}, "trials": 2}))
    assert store.list() == []
