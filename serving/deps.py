"""Typed dependencies: the app's long-lived services, taken from ``app.state``."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from serving.metrics import ServingMetrics
from serving.model_follower import ModelFollower
from serving.recommender import Recommender
from serving.settings import Settings
from serving.stores.base import Store


def get_settings_dep(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


def get_store(request: Request) -> Store:
    return cast(Store, request.app.state.store)


def get_metrics(request: Request) -> ServingMetrics:
    return cast(ServingMetrics, request.app.state.metrics)


def get_follower(request: Request) -> ModelFollower:
    return cast(ModelFollower, request.app.state.follower)


def get_recommender(request: Request) -> Recommender:
    return cast(Recommender, request.app.state.recommender)


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
StoreDep = Annotated[Store, Depends(get_store)]
MetricsDep = Annotated[ServingMetrics, Depends(get_metrics)]
FollowerDep = Annotated[ModelFollower, Depends(get_follower)]
RecommenderDep = Annotated[Recommender, Depends(get_recommender)]
