import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ecr from 'aws-cdk-lib/aws-ecr';

export const ENV = { account: '123456789012', region: 'us-east-1' };

/** A stack with an explicit environment and a repository in it. */
export function givenStack(): { app: App; stack: Stack; repository: ecr.Repository } {
  const app = new App();
  const stack = new Stack(app, 'Stack', { env: ENV });
  const repository = new ecr.Repository(stack, 'Repo', { repositoryName: 'ml/trainer' });
  return { app, stack, repository };
}

/**
 * The definition of the template's only state machine, with every reference written `${LogicalId}`
 * (`${AWS::Partition}` for pseudo parameters), as CloudFormation would substitute it.
 */
export function stateMachineDefinition(template: Template): any {
  const machines = Object.values(template.findResources('AWS::StepFunctions::StateMachine'));
  if (machines.length !== 1) throw new Error(`expected one state machine, found ${machines.length}`);
  return definitionOf(machines[0]);
}

/** The definition of an `AWS::StepFunctions::StateMachine` resource, references written `${LogicalId}`. */
export function definitionOf(machine: any): any {
  const body = machine.Properties.DefinitionString;
  const text = typeof body === 'string' ? body : body['Fn::Join'][1].map((part: any) => {
    if (typeof part === 'string') return part;
    if (part.Ref) return `\${${part.Ref}}`;
    if (part['Fn::GetAtt']) return `\${${part['Fn::GetAtt'].join('.')}}`;
    throw new Error(`unexpected part in the definition: ${JSON.stringify(part)}`);
  }).join('');
  return JSON.parse(text);
}
