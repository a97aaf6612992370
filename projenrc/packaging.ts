import { awscdk } from 'projen';

/**
 * Multi-language packaging (npm, Python, Java, Go built here; .NET generated), jsii-rosetta
 * and release settings. Owned by the packaging work (issue "Every jsii language").
 */
export function configurePackaging(_project: awscdk.AwsCdkConstructLibrary): void {
}
