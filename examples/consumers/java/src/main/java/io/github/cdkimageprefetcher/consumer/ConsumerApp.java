package io.github.cdkimageprefetcher.consumer;

import io.github.cdkimageprefetcher.ImagePrefetcher;
import io.github.cdkimageprefetcher.ImagePrefetcherProps;
import io.github.cdkimageprefetcher.NodeSelector;
import io.github.cdkimageprefetcher.ReconcileSchedule;
import io.github.cdkimageprefetcher.TagFilter;
import software.amazon.awscdk.App;
import software.amazon.awscdk.AppProps;
import software.amazon.awscdk.Duration;
import software.amazon.awscdk.Environment;
import software.amazon.awscdk.Stack;
import software.amazon.awscdk.StackProps;
import software.amazon.awscdk.services.ecr.Repository;
import software.amazon.awscdk.services.iam.Role;
import software.amazon.awscdk.services.iam.ServicePrincipal;

/** A Java app that uses the jar built in dist/java: the same stack as ../reference.ts. */
public final class ConsumerApp {
    private ConsumerApp() {
    }

    public static void main(final String[] args) {
        String outdir = System.getenv().getOrDefault("CDK_OUTDIR", "cdk.out");
        App app = new App(AppProps.builder()
                .outdir(outdir)
                // The analytics metadata names the language of the app: leave it out so that templates compare.
                .analyticsReporting(false)
                .build());
        Stack stack = new Stack(app, "PrefetchConsumer", StackProps.builder()
                .env(Environment.builder().account("123456789012").region("us-east-1").build())
                .build());

        Repository repository = new Repository(stack, "Repo");

        ImagePrefetcher cluster = new ImagePrefetcher(stack, "ClusterPrefetch", ImagePrefetcherProps.builder()
                .repository(repository)
                .nodes(NodeSelector.eksCluster("ml-cluster"))
                .build());

        new ImagePrefetcher(stack, "GpuPrefetch", ImagePrefetcherProps.builder()
                .repository(repository)
                .nodes(NodeSelector.tag("eks:nodegroup-name", "gpu-a", "gpu-b"))
                .tagFilter(TagFilter.prefix("release-"))
                .reconcileSchedule(ReconcileSchedule.rate(Duration.hours(6)))
                .build());

        Role nodeRole = Role.Builder.create(stack, "NodeRole")
                .assumedBy(new ServicePrincipal("ec2.amazonaws.com"))
                .build();
        cluster.grantNodeAccess(nodeRole);

        app.synth();
    }
}
