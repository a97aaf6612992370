// The monitoring contract as the SYNTHESIZED template states it: the stack's status-events rule
// pattern and the metric filters (status events, and the nodes' output with `nodeOutputLogs`), with
// the references CloudFormation resolves at deploy time replaced by stand-ins.
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import { MetricFilterProps } from './metric-filters';
import { CONTRACT_ENV } from './synthesized';
import { ImagePrefetcher, NodeSelector } from '../../src';

/** Stand-ins for what CloudFormation names at deploy time. */
export const DOCUMENT_NAME = 'Contract-ImagePrefetcherDocument-AbCdEf012345';
export const ASSOCIATION_ID = '0b2c3d4e-5f60-4718-8a9b-0c1d2e3f4a5b';

/** The stack's status-events rule pattern and metric filters, with the document's and association's references replaced. */
export function synthesizeStatusEvents(props: { nodeOutputLogs?: boolean } = {}) {
  const app = new App();
  const stack = new Stack(app, 'Contract', { env: CONTRACT_ENV });
  new ImagePrefetcher(stack, 'Prefetcher', {
    repository: ecr.Repository.fromRepositoryName(stack, 'Repository', 'team/app'),
    nodes: NodeSelector.eksCluster('prod'),
    ...props,
  });
  const template = Template.fromStack(stack).toJSON();
  const resources: Array<[string, any]> = Object.entries(template.Resources);
  const [documentId] = resources.find(([, r]) => r.Type === 'AWS::SSM::Document')!;
  const [associationId] = resources.find(([, r]) => r.Type === 'AWS::SSM::Association')!;
  const substitute = (value: any): any => JSON.parse(JSON.stringify(value)
    .replace(JSON.stringify({ Ref: documentId }), JSON.stringify(DOCUMENT_NAME))
    .replace(JSON.stringify({ 'Fn::GetAtt': [associationId, 'AssociationId'] }), JSON.stringify(ASSOCIATION_ID)));
  const rules = resources.filter(([, r]) => r.Type === 'AWS::Events::Rule' && r.Properties.EventPattern.source[0] === 'aws.ssm');
  if (rules.length !== 1) throw new Error(`expected one status-events rule, found ${rules.length}`);
  const [, rule] = rules[0];
  const logGroupOf = (filter: any) => filter.Properties.LogGroupName.Ref;
  const statusLogGroup = rule.Properties.Targets[0].Arn['Fn::Join'][1].find((p: any) => p.Ref && !p.Ref.startsWith('AWS::'))?.Ref;
  const filters = resources.filter(([, r]) => r.Type === 'AWS::Logs::MetricFilter').map(([, r]) => r);
  return {
    eventPattern: substitute(rule.Properties.EventPattern),
    statusFilters: filters.filter(f => logGroupOf(f) === statusLogGroup).map(f => f.Properties as MetricFilterProps),
    outputFilters: filters.filter(f => logGroupOf(f) !== statusLogGroup).map(f => f.Properties as MetricFilterProps),
  };
}
