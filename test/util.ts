import { App, Stack } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';

export const ENV = { account: '123456789012', region: 'us-east-1' };

/** A stack with an explicit environment and a repository in it. */
export function givenStack(): { app: App; stack: Stack; repository: ecr.Repository } {
  const app = new App();
  const stack = new Stack(app, 'Stack', { env: ENV });
  const repository = new ecr.Repository(stack, 'Repo', { repositoryName: 'ml/trainer' });
  return { app, stack, repository };
}
