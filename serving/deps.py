"""Typed dependencies: the app's long-lived services, taken from ``app.state``.

They are ``async`` because they only read attributes: FastAPI runs a plain ``def`` dependency in
its thread pool, a hop that costs more than the lookup (and shows in /v1/recommend latency).
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from serving.metrics import ServingMetrics
from serving.model_follower import ModelFollower
from serving.recommender import Recommender
from serving.settings import Settings
from serving.stores.base import Store


async def get_settings_dep(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


async def get_store(request: Request) -> Store:
    return cast(Store, request.app.state.store)


async def get_metrics(request: Request) -> ServingMetrics:
    return cast(ServingMetrics, request.app.state.metrics)


async def get_follower(request: Request) -> ModelFollower:
    return cast(ModelFollower, request.app.state.follower)


async def get_recommender(request: Request) -> Recommender:
    return cast(Recommender, request.app.state.recommender)


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
StoreDep = Annotated[Store, Depends(get_store)]
MetricsDep = Annotated[ServingMetrics, Depends(get_metrics)]
FollowerDep = Annotated[ModelFollower, Depends(get_follower)]
RecommenderDep = Annotated[Recommender, Depends(get_recommender)]
