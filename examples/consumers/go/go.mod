module github.com/cdk-image-prefetcher/cdk-image-prefetcher/examples/consumers/go

go 1.25

require (
	github.com/aws/aws-cdk-go/awscdk/v2 v2.245.0
	github.com/aws/constructs-go/constructs/v10 v10.5.1
	github.com/aws/jsii-runtime-go v1.140.0
	github.com/cdk-image-prefetcher/cdk-image-prefetcher-go/cdkimageprefetcher v0.0.0
)

// The module built by `npx projen package` (jsii-pacmak), not a published copy.
replace github.com/cdk-image-prefetcher/cdk-image-prefetcher-go/cdkimageprefetcher => ../../../dist/go/cdkimageprefetcher
