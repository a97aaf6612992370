// A Go app that uses the Go module built in dist/go: the same stack as ../reference.ts.
package main

import (
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecr"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdk-image-prefetcher/cdk-image-prefetcher-go/cdkimageprefetcher"
)

func main() {
	defer jsii.Close()

	outdir := os.Getenv("CDK_OUTDIR")
	if outdir == "" {
		outdir = "cdk.out"
	}
	app := awscdk.NewApp(&awscdk.AppProps{
		Outdir:             jsii.String(outdir),
		AnalyticsReporting: jsii.Bool(false),
	})
	stack := awscdk.NewStack(app, jsii.String("PrefetchConsumer"), &awscdk.StackProps{
		Env: &awscdk.Environment{
			Account: jsii.String("123456789012"),
			Region:  jsii.String("us-east-1"),
		},
	})

	repository := awsecr.NewRepository(stack, jsii.String("Repo"), nil)

	cluster := cdkimageprefetcher.NewImagePrefetcher(stack, jsii.String("ClusterPrefetch"), &cdkimageprefetcher.ImagePrefetcherProps{
		Repository: repository,
		Nodes:      cdkimageprefetcher.NodeSelector_EksCluster(jsii.String("ml-cluster")),
	})

	cdkimageprefetcher.NewImagePrefetcher(stack, jsii.String("GpuPrefetch"), &cdkimageprefetcher.ImagePrefetcherProps{
		Repository:        repository,
		Nodes:             cdkimageprefetcher.NodeSelector_Tag(jsii.String("eks:nodegroup-name"), jsii.String("gpu-a"), jsii.String("gpu-b")),
		TagFilter:         cdkimageprefetcher.TagFilter_Prefix(jsii.String("release-")),
		ReconcileSchedule: cdkimageprefetcher.ReconcileSchedule_Rate(awscdk.Duration_Hours(jsii.Number(6))),
	})

	nodeRole := awsiam.NewRole(stack, jsii.String("NodeRole"), &awsiam.RoleProps{
		AssumedBy: awsiam.NewServicePrincipal(jsii.String("ec2.amazonaws.com"), nil),
	})
	cluster.GrantNodeAccess(nodeRole)

	app.Synth(nil)
}
