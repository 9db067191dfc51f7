"""Parameters as a user changes them: conf/local overrides, --params, and clear errors for bad values."""

import pytest
from kedro.config import OmegaConfigLoader

from convncf_kedro.config import study_members
from convncf_kedro.config.params import validate_parameters
from convncf_kedro.errors import ParameterError
from convncf_kedro.settings import CONFIG_LOADER_ARGS


def loaded_parameters(project, runtime_params=None) -> dict:
    loader = OmegaConfigLoader(str(project.root / "conf"), runtime_params=runtime_params, **CONFIG_LOADER_ARGS)
    return loader["parameters"]


def test_runtime_params_keep_the_rest_of_a_group_even_with_local_overrides(kedro_project):
    project = kedro_project("ml-100k-ncf")  # writes conf/local/parameters_ingestion.yml
    params = loaded_parameters(project, {"pretrain": {"training": {"epochs": 2}}, "ingestion": {"n_negatives": 50}})
    assert params["pretrain"]["training"]["epochs"] == 2
    assert params["pretrain"]["training"]["patience"] == 20  # from conf/base
    assert params["ingestion"]["format"] == "ncf"  # from conf/local
    assert params["ingestion"]["n_negatives"] == 50
    validate_parameters(params)


@pytest.mark.parametrize(
    "change, parameter",
    [
        ({"pretrain": {"training": {"epochs": -1}}}, "pretrain.training.epochs"),
        ({"pretrain": {"embedding_size": 48}}, "pretrain.embedding_size"),
        ({"convncf": {"kernel_sizes": [4, 4]}}, "convncf.kernel_sizes"),
        ({"convncf": {"recipes": {"authors": {"phases": [{"optimizer": "sgd", "lr_embedding": 1}]}}}},
         "convncf.recipes.authors.phases.0.optimizer"),
        ({"convncf": {"recipes": {"residual": {"phases": [{"lr_embedding": 0.1, "epochs": 3}]}}}},
         "convncf.recipes.residual.phases"),
        ({"convncf": {"recipe": "paper"}}, "convncf.recipe"),
        ({"ingestion": {"format": "parquet"}}, "ingestion.format"),
        ({"evaluation": {"ks": [5, 200]}}, "evaluation.ks"),
        ({"convncf": {"recipes": {"authors": {"dropout": 1.5}}}}, "convncf.recipes.authors.dropout"),
        ({"pretrain": {"training": {"epochz": 3}}}, "pretrain.training.epochz"),
    ],
)
def test_invalid_values_are_named_before_any_work(kedro_project, change, parameter):
    project = kedro_project()
    with pytest.raises(ParameterError, match=rf"parameter '{parameter}'"):
        validate_parameters(loaded_parameters(project, change))


def test_an_unknown_recipe_is_named_with_the_allowed_ones(kedro_project):
    with pytest.raises(ParameterError, match=r"'paper' is not one of the recipes: authors, mf_identity, residual"):
        validate_parameters(loaded_parameters(kedro_project(), {"convncf": {"recipe": "paper"}}))


@pytest.mark.parametrize(("study", "message"), [
    ({"metrics": ["ndcg@50"]}, r"'study.metrics': K \[50\] must be among evaluation.ks"),
    ({"seeds": [1, 2]}, r"'study': .*\['seeds'\] shape the study's pipeline, so they live in conf/base/study.yml"),
])
def test_a_study_of_unevaluated_cut_offs_or_members_given_as_parameters_is_refused(kedro_project, study, message):
    with pytest.raises(ParameterError, match=message):
        validate_parameters(loaded_parameters(kedro_project(), {"study": study}))


def test_study_members_of_unknown_recipes_or_repeated_seeds_are_refused_naming_the_file(kedro_project):
    with pytest.raises(ParameterError, match=r"'study.recipes': \['paper'\] \(study.yml\) are not recipes of convncf"):
        validate_parameters(loaded_parameters(kedro_project()), study_recipes=["authors", "paper"])
    with pytest.raises(ParameterError, match=r"'study.seeds \(conf/local/study.yml\)': .*\[1, 1\] repeats an entry"):
        study_members.from_config({"seeds": [1, 1], "recipes": ["authors"]}, "conf/local/study.yml")
    shipped = study_members.registered(kedro_project().root)
    assert shipped.seeds == [2018, 2019, 2020, 2021, 2022] and shipped.recipes == ["authors", "residual", "mf_identity"]


def test_a_run_with_a_bad_value_fails_at_the_start(kedro_project):
    project = kedro_project("ml-100k")
    with pytest.raises(ParameterError, match="pretrain.training.epochs"):
        project.run("ingestion", params={"pretrain": {"training": {"epochs": 0}}})
    assert not (project.root / "data/02_intermediate/raw_log.parquet").exists()


def test_a_misspelled_group_is_refused_with_a_suggestion(kedro_project):
    with pytest.raises(ParameterError, match=r"parameter 'convnfc': is not a parameter group \(did you mean 'convncf'\?\)"):
        validate_parameters(loaded_parameters(kedro_project(), {"convnfc": {"training": {"epochs": 1}}}))


def test_a_misspelled_key_is_refused_with_a_suggestion(kedro_project):
    with pytest.raises(ParameterError, match=r"'pretrain.training.epochz': is not a parameter of this group \(did you mean 'epochs'\?\)"):
        validate_parameters(loaded_parameters(kedro_project(), {"pretrain": {"training": {"epochz": 3}}}))


def test_a_run_refused_by_the_parameter_check_is_failed_in_mlflow(kedro_project):
    project = kedro_project("ml-100k")
    with pytest.raises(ParameterError, match="convnfc"):
        project.run("ingestion", params={"convnfc": {"training": {"epochs": 1}}})
    (run,) = project.mlflow_runs()
    assert run.info.status == "FAILED"
    with pytest.raises(Exception, match=r"train.parquet") as later:  # the project lock was given back: the next
        project.run("matrix")                                          # run starts, and stops on its missing input
    assert "another kedro run" not in str(later.value)


def test_a_malformed_study_yml_leaves_train_alone_and_stops_the_study_naming_it(kedro_project):
    project = kedro_project()  # stops before reading any data
    project.write_conf("study.yml", {"seeds": [1, 1], "recipes": ["authors"]})
    assert study_members.registered(project.root) is None  # registration goes on: `train` is not the study's
    with pytest.raises(ParameterError, match=r"'study.seeds \(study.yml of env 'local'\)': .*\[1, 1\] repeats an entry"):
        project.run("study")
