// The event-to-node contract as the SYNTHESIZED template states it: the rule's event pattern,
// its target's input transformer, the push rollout's SendCommand task (state machine definition),
// the SSM document, the association.
// Read from the CloudFormation template of a stack with the construct, never from the TypeScript
// that produced it, so that the contract tests see exactly what CloudFormation would deploy.
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import { InputTransformer } from './eventbridge';
import { evaluateParameters } from './stepfunctions';
import { ImagePrefetcher, ImagePrefetcherProps, NodeSelector } from '../../src';
import { stateMachineDefinition } from '../util';

/** An account and region with which every value in the contract is a literal (no tokens). */
export const CONTRACT_ENV = { account: '123456789012', region: 'eu-west-1' };
export const CONTRACT_REPOSITORY = 'team/app';

/** The parts of the template that carry an event to the node. */
export interface Contract {
  readonly eventPattern: { [key: string]: unknown };
  readonly inputTransformer: InputTransformer;
  /** The rule target's ARN: the push rollout's state machine. */
  readonly targetArn: unknown;
  /** The state machine's SendCommand task: `Resource` and `Parameters`, references written `${LogicalId}`. */
  readonly sendCommandTask: { Resource: string; Parameters: { [key: string]: unknown } };
  readonly stateMachineLogicalId: string;
  /** The SSM Command document's content: `{schemaVersion, parameters, mainSteps}`. */
  readonly document: { parameters: { [name: string]: { allowedPattern?: string; default?: string } }; mainSteps: any[] };
  readonly documentLogicalId: string;
  readonly associationParameters: { [name: string]: string[] };
  readonly associationTargets: Array<{ Key: string; Values: string[] }>;
  readonly associationMaxConcurrency: string;
  readonly associationMaxErrors: string;
}

/** The props the contract stacks are built with (jitter 0 so that the node chain runs at once). */
export type ContractProps = Partial<Omit<ImagePrefetcherProps, 'repository'>>;

/** Synthesizes a stack with one ImagePrefetcher and reads the contract from its template. */
export function synthesizeContract(props: ContractProps = {}): Contract {
  const app = new App();
  const stack = new Stack(app, 'Contract', { env: CONTRACT_ENV });
  new ImagePrefetcher(stack, 'Prefetcher', {
    repository: ecr.Repository.fromRepositoryName(stack, 'Repository', CONTRACT_REPOSITORY),
    nodes: NodeSelector.eksCluster('prod'),
    jitter: Duration.seconds(0),
    ...props,
  });
  return readContract(Template.fromStack(stack).toJSON());
}

/** Reads the contract from a CloudFormation template with exactly one prefetcher. */
export function readContract(template: any): Contract {
  const resources: Array<[string, any]> = Object.entries(template.Resources ?? {});
  const only = (type: string): [string, any] => {
    const found = resources.filter(([, r]) => r.Type === type);
    if (found.length !== 1) throw new Error(`expected one ${type}, found ${found.length}`);
    return found[0];
  };
  // The push rule: the one whose target is the push rollout (the stack's status-events rule targets a log group).
  const pushRules = resources.filter(([, r]) => r.Type === 'AWS::Events::Rule' && r.Properties.EventPattern?.source?.[0] === 'aws.ecr');
  if (pushRules.length !== 1) throw new Error(`expected one push rule, found ${pushRules.length}`);
  const [, rule] = pushRules[0];
  const [stateMachineLogicalId] = only('AWS::StepFunctions::StateMachine');
  const [documentLogicalId, document] = only('AWS::SSM::Document');
  const [, association] = only('AWS::SSM::Association');
  const targets = rule.Properties.Targets;
  if (targets.length !== 1) throw new Error(`expected one rule target, found ${targets.length}`);
  const target = targets[0];
  const content = typeof document.Properties.Content === 'string' ? JSON.parse(document.Properties.Content) : document.Properties.Content;
  return {
    eventPattern: rule.Properties.EventPattern,
    inputTransformer: target.InputTransformer,
    targetArn: target.Arn,
    sendCommandTask: stateMachineDefinition(Template.fromJSON(template)).States.SendCommand,
    stateMachineLogicalId,
    document: content,
    documentLogicalId,
    associationParameters: association.Properties.Parameters,
    associationTargets: association.Properties.Targets,
    associationMaxConcurrency: association.Properties.MaxConcurrency,
    associationMaxErrors: association.Properties.MaxErrors,
  };
}

/** Association parameters as SSM receives them: CloudFormation has resolved every `Ref` (to `name`). */
export function resolveRefs<T>(value: T, name: string): T {
  return JSON.parse(JSON.stringify(value), (_, v) => (v && typeof v === 'object' && !Array.isArray(v) && typeof v.Ref === 'string' ? name : v));
}

/** The SendCommand request the push rollout makes for an execution input (the transformer's output). */
export function sendCommandRequest(contract: Contract, executionInput: string): { [key: string]: any } {
  if (contract.sendCommandTask.Resource !== 'arn:${AWS::Partition}:states:::aws-sdk:ssm:sendCommand') {
    throw new Error(`the rollout task is not SendCommand: ${contract.sendCommandTask.Resource}`);
  }
  return evaluateParameters(contract.sendCommandTask.Parameters, JSON.parse(executionInput));
}
