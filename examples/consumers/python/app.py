"""A Python app that uses the wheel built in dist/python: the same stack as ../reference.ts."""
import os

import aws_cdk as cdk
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from cdk_image_prefetcher import ImagePrefetcher, NodeSelector, ReconcileSchedule, TagFilter

app = cdk.App(
    outdir=os.environ.get("CDK_OUTDIR", "cdk.out"),
    # The analytics metadata names the language of the app: leave it out so that templates compare.
    analytics_reporting=False,
)
stack = cdk.Stack(
    app,
    "PrefetchConsumer",
    env=cdk.Environment(account="123456789012", region="us-east-1"),
)

repository = ecr.Repository(stack, "Repo")

cluster = ImagePrefetcher(
    stack,
    "ClusterPrefetch",
    repository=repository,
    nodes=NodeSelector.eks_cluster("ml-cluster"),
)

ImagePrefetcher(
    stack,
    "GpuPrefetch",
    repository=repository,
    nodes=NodeSelector.tag("eks:nodegroup-name", "gpu-a", "gpu-b"),
    tag_filter=TagFilter.prefix("release-"),
    reconcile_schedule=ReconcileSchedule.rate(cdk.Duration.hours(6)),
)

node_role = iam.Role(stack, "NodeRole", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"))
cluster.grant_node_access(node_role)

app.synth()
