"""The RO-Crate of a campaign, following the Provenance Run Crate profile (version 0.5).

The campaign spec is the workflow, each workflow step a ``HowToStep`` naming its
instrument, each attempt a ``CreateAction`` (instrument: the lab's instruments; object:
the parameters; result: the attempt's Bluesky documents and the derived metrics;
``actionStatus`` and ``error`` for failures), each proposal a ``CreateAction`` of the
planner, and labos as the engine's ``OrganizeAction``. 0.5 is the newest version
``roc-validator`` knows.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from labos.data.jsonutil import dumps
from labos.data.records import AttemptRecord, CampaignRecord, ExperimentRecord
from labos.data.store import Store
from labos.data.tables import experiment_rows, iso_time, write_csv

PROFILES = {
    "https://w3id.org/ro/wfrun/process/0.5": "Process Run Crate",
    "https://w3id.org/ro/wfrun/workflow/0.5": "Workflow Run Crate",
    "https://w3id.org/ro/wfrun/provenance/0.5": "Provenance Run Crate",
    "https://w3id.org/workflowhub/workflow-ro-crate/1.0": "Workflow RO-Crate",
}


def _value(name: str, value: Any, unit: str | None = None) -> dict[str, Any]:
    return {"@type": "PropertyValue", "name": name, "value": value} | ({"unitText": unit} if unit else {})


def write_rocrate(
    store: Store,
    rec: CampaignRecord,
    exps: Sequence[ExperimentRecord],
    attempts: Sequence[AttemptRecord],
    stage: Path,
    out: Path,
    documents: Callable[[str], list[tuple[str, dict[str, Any]]]],
) -> Path:
    """Write the campaign as a Provenance Run Crate in directory ``out``; the metadata file's path.

    Data files are written to ``stage`` first and copied into ``out`` by the crate;
    ``documents(run_uid)`` gives a run's ``(name, doc)`` pairs.
    """
    from rocrate.model import ContextEntity
    from rocrate.rocrate import ROCrate

    spec = rec.spec
    versions = rec.provenance.get("versions", {})
    crate = ROCrate(version="1.1")  # the Provenance Run Crate 0.5 profile builds on RO-Crate 1.1
    root = crate.root_dataset
    root["name"] = f"labos campaign {rec.id}"
    root["description"] = spec.get("description") or f"Closed-loop campaign {rec.name}, run with labos."
    root["license"] = {"@id": "https://spdx.org/licenses/CC-BY-4.0"}
    root["datePublished"] = datetime.now(UTC).isoformat()
    root["conformsTo"] = [{"@id": uri} for uri in PROFILES]
    for uri, name in PROFILES.items():
        crate.add(ContextEntity(crate, uri, {"@type": "CreativeWork", "name": name, "version": uri.rsplit("/", 1)[1]}))

    def entity(identifier: str, props: dict[str, Any]) -> Any:
        return crate.add(ContextEntity(crate, identifier, props))

    labos_version = versions.get("labos", "unknown")
    entity("https://spdx.org/licenses/CC-BY-4.0", {"@type": "CreativeWork", "name": "CC BY 4.0"})

    engine = entity(
        "#labos",
        {"@type": "SoftwareApplication", "name": "labos", "version": versions.get("labos", "unknown")}
        | {"softwareRequirements": [f"{k} {v}" for k, v in sorted(versions.items())]},
    )
    planner = spec.get("planner", {})
    planner_tool = entity(
        "#planner",
        {
            "@type": "SoftwareApplication",
            "name": f"labos planner {planner.get('name')}",
            "description": f"options {json.dumps(planner.get('options', {}), sort_keys=True)}, seed {spec.get('seed')}",
            "version": labos_version,
        },
    )
    instruments = spec["workflow"]["instruments"]
    tools = {
        name: entity(
            f"#instrument-{name}",
            {
                "@type": "SoftwareApplication",
                "name": name,
                "description": f"{inst['kind']} instrument, driver {inst.get('driver', 'sim')}",
                "version": labos_version,
                "additionalProperty": [_value("option " + k, dumps(v)) for k, v in inst.get("options", {}).items()],
            },
        )
        for name, inst in instruments.items()
    }
    space = spec["space"]
    # a composition's components are the parameters experiments carry (fractions summing to its total)
    declared = {c: p for p in space.values() for c in p.get("components", [])} | {
        k: p for k, p in space.items() if "components" not in p
    }
    in_params = {
        name: entity(
            f"#param-{name}",
            {"@type": "FormalParameter", "name": name, "additionalType": "Text" if "choices" in p else "Float"}
            | ({"unitText": p["unit"]} if p.get("unit") else {}),
        )
        for name, p in declared.items()
    }
    out_params = {
        o["name"]: entity(
            f"#objective-{o['name']}",
            {"@type": "FormalParameter", "name": o["name"], "additionalType": "Float", "description": o["direction"]},
        )
        for o in spec["objectives"]
    }
    steps = [
        entity(
            f"#step-{i}-{s['action']}",
            {
                "@type": "HowToStep",
                "name": f"{s['action']} on {s['instrument']}",
                "position": str(i),
                "workExample": {"@id": tools[s["instrument"]].id},
            },
        )
        for i, s in enumerate(spec["workflow"]["steps"])
    ]
    spec_path = stage / "campaign.yaml"
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    workflow = crate.add_file(
        spec_path,
        "campaign.yaml",
        properties={
            "@type": ["File", "SoftwareSourceCode", "ComputationalWorkflow", "HowTo"],
            "name": f"campaign {rec.name}",
            "encodingFormat": "application/yaml",
            "programmingLanguage": {"@id": "#labos-campaign"},
            "version": str(rec.created),
            "hasPart": [{"@id": t.id} for t in tools.values()],
            "step": [{"@id": s.id} for s in steps],
            "input": [{"@id": p.id} for p in in_params.values()],
            "output": [{"@id": p.id} for p in out_params.values()],
        },
    )
    entity("#labos-campaign", {"@type": "ComputerLanguage", "name": "labos campaign file", "version": "1"})
    crate.mainEntity = workflow
    root["mainEntity"] = {"@id": workflow.id}
    user = entity("#operator", {"@type": "Person", "name": rec.provenance.get("user") or getpass.getuser()})
    root["author"] = {"@id": user.id}
    actions: list[Any] = []
    prov_path = stage / "provenance.json"
    prov_path.write_text(json.dumps(rec.provenance, indent=2, sort_keys=True))
    crate.add_file(
        prov_path,
        "provenance.json",
        properties={"name": "host, versions, resumes", "encodingFormat": "application/json"},
    )

    examples: dict[str, list[dict[str, str]]] = {name: [] for name in [*in_params, *out_params]}
    controls = []
    runs_dir = stage / "runs"
    runs_dir.mkdir(exist_ok=True)
    by_exp: dict[str, list[AttemptRecord]] = {}
    for a in attempts:
        by_exp.setdefault(a.experiment_id, []).append(a)
    for e in exps:
        params = []
        for name, v in e.params.items():
            pv = entity(f"#{e.id}-param-{name}", _value(name, v, declared.get(name, {}).get("unit")))
            if name in in_params:
                pv["exampleOfWork"] = {"@id": in_params[name].id}
            params.append({"@id": pv.id})
            if name in examples:
                examples[name].append({"@id": pv.id})
        proposal = entity(
            f"#{e.id}-proposal",
            {
                "@type": "CreateAction",
                "name": f"proposal {e.seq}",
                "description": f"planner {planner.get('name')} proposed experiment {e.seq}",
                "agent": {"@id": user.id},
                "instrument": {"@id": planner_tool.id},
                "result": params,
                "endTime": iso_time(e.proposed),
                "actionStatus": "http://schema.org/CompletedActionStatus",
            },
        )
        actions.append(proposal)
        for a in by_exp.get(e.id, []):
            result: list[dict[str, str]] = []
            if a.run_uid:
                docs = documents(a.run_uid)
                path = runs_dir / f"{e.seq:04d}-a{a.n}.jsonl"
                path.write_text("".join(dumps([n, d]) + "\n" for n, d in docs))
                f = crate.add_file(
                    path,
                    f"runs/{path.name}",
                    properties={
                        "name": f"Bluesky documents of experiment {e.seq}, attempt {a.n}",
                        "encodingFormat": "application/x-ndjson",
                        "identifier": a.run_uid,
                    },
                )
                result.append({"@id": f.id})
            last_ok = a.status == "succeeded" and e.status == "completed"
            if last_ok:
                for k, v in (e.metrics or {}).items():
                    result.append({"@id": entity(f"#{e.id}-metric-{k}", _value(k, v)).id})
                for k, v in (e.objectives or {}).items():
                    pv = entity(f"#{e.id}-objective-{k}", _value(k, v))
                    if k in out_params:
                        pv["exampleOfWork"] = {"@id": out_params[k].id}
                    result.append({"@id": pv.id})
                    if k in examples:
                        examples[k].append({"@id": pv.id})
            ok = last_ok or (a.status == "succeeded" and e.status not in ("failed",))
            props: dict[str, Any] = {
                "@type": "CreateAction",
                "name": f"experiment {e.seq}, attempt {a.n}",
                "description": f"experiment {e.id} ({e.status}), attempt {a.n} ({a.status})",
                "instrument": [{"@id": t.id} for t in tools.values()],
                "object": params,
                "agent": {"@id": user.id},
                "startTime": iso_time(a.started),
                "actionStatus": "http://schema.org/CompletedActionStatus"
                if ok
                else "http://schema.org/FailedActionStatus",
            }
            props["endTime"] = iso_time(a.finished if a.finished is not None else a.started)
            if result:
                props["result"] = result
            error = a.error if a.status != "succeeded" else (e.error if e.status == "failed" else None)
            if error and not ok:
                cause = a.cause if a.status != "succeeded" else e.cause
                props["error"] = f"[{cause}] {error}" if cause else error
            action = entity(f"#{e.id}-attempt-{a.n}", props)
            actions.append(action)
            for s in steps:
                controls.append(
                    entity(
                        f"#{e.id}-attempt-{a.n}-{s.id.lstrip('#')}",
                        {"@type": "ControlAction", "instrument": {"@id": s.id}, "object": {"@id": action.id}},
                    )
                )
    for name, refs in examples.items():
        param = in_params.get(name) or out_params[name]
        if not refs:  # no experiment produced a value: say so, as the profile wants an example
            none = entity(f"#{name}-no-value", _value(name, None) | {"exampleOfWork": {"@id": param.id}})
            refs = [{"@id": none.id}]
        param["workExample"] = refs

    readme = stage / "README.md"
    n_ok = sum(e.status == "completed" for e in exps)
    readme.write_text(
        f"# labos campaign {rec.id}\n\n{root['description']}\n\n"
        f"Status: {rec.status}. {len(exps)} experiments ({n_ok} completed), {len(attempts)} attempts.\n\n"
        "- `campaign.yaml`: the campaign as validated (the workflow)\n"
        "- `experiments.csv`: every experiment, failed ones with their cause\n"
        "- `runs/`: the Bluesky documents of every attempt, one `[name, doc]` JSON array per line\n"
        "- `provenance.json`: host, software versions, resumes\n"
        "- `ro-crate-metadata.json`: the provenance graph (Provenance Run Crate 0.5)\n"
    )
    crate.add_file(readme, "README.md", properties={"about": {"@id": "./"}, "encodingFormat": "text/markdown"})
    table = stage / "experiments.csv"
    write_csv(experiment_rows(exps), table)
    table_file = crate.add_file(
        table,
        "experiments.csv",
        properties={"name": "every experiment, failures and causes included", "encodingFormat": "text/csv"},
    )
    # a stopped campaign did not complete its budget: failed as an action, its message says why
    status = {"completed": "CompletedActionStatus", "running": "ActiveActionStatus"}.get(
        rec.status, "FailedActionStatus"
    )
    run_props: dict[str, Any] = {
        "@type": "CreateAction",
        "name": f"campaign run {rec.id}",
        "description": f"campaign {rec.id}: {rec.status}" + (f" ({rec.message})" if rec.message else ""),
        "instrument": {"@id": workflow.id},
        "agent": {"@id": user.id},
        "result": [{"@id": table_file.id}],
        "startTime": iso_time(rec.created),
        "actionStatus": f"http://schema.org/{status}",
    }
    if rec.finished is not None:
        run_props["endTime"] = iso_time(rec.finished)
    run = entity("#campaign-run", run_props)
    root["mentions"] = [{"@id": a.id} for a in [run, *actions]]
    entity(
        "#orchestration",
        {
            "@type": "OrganizeAction",
            "name": "labos orchestrating the campaign",
            "instrument": {"@id": engine.id},
            "object": [{"@id": c.id} for c in controls],
            "result": {"@id": run.id},
        },
    )
    for e in crate.get_entities():  # RO-Crate 1.1: a single value, not a one-element list
        for k, v in list(e.properties().items()):
            if isinstance(v, list) and len(v) == 1 and k != "@type":
                e[k] = v[0]
    crate.write(out)
    return out / "ro-crate-metadata.json"
