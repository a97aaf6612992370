// SSM's per-node status events as EventBridge delivers them to the default bus. The two examples
// below are copied from the Systems Manager user guide, "Amazon EventBridge event examples for
// Systems Manager" (https://docs.aws.amazon.com/systems-manager/latest/userguide/monitoring-systems-manager-event-examples.html,
// sections "Run Command Invocation Status-change Notification" and "State Manager Instance
// Association State Change"); the table varies only the fields the prefetcher's rule and metric
// filters look at (document name, status, association ID), the other fields stay as documented.
// The command-level "EC2 Command Status-change Notification" and the association-level "EC2 State
// Manager Association State Change" of the same page are included as events the rule must ignore.
import { Event } from './ecr-events';

/** Run Command Invocation Status-change Notification, as documented (one per node and status). */
export const DOCUMENTED_INVOCATION: Event = {
  'version': '0',
  'id': '4780e1b8-f56b-4de5-95f2-95db273d1602',
  'detail-type': 'EC2 Command Invocation Status-change Notification',
  'source': 'aws.ssm',
  'account': '123456789012',
  'time': '2016-07-10T21:51:32Z',
  'region': 'us-east-1',
  'resources': ['arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111'],
  'detail': {
    'command-id': 'e8d3c0e4-71f7-4491-898f-c9b35bee5f3b',
    'document-name': 'AWS-RunPowerShellScript',
    'instance-id': 'i-9bb89e2b',
    'requested-date-time': '2016-07-10T21:51:30.049Z',
    'status': 'Success',
  },
};

/** Run Command Status-change Notification (the whole command), as documented. */
export const DOCUMENTED_COMMAND: Event = {
  'version': '0',
  'id': '51c0891d-0e34-45b1-83d6-95db273d1602',
  'detail-type': 'EC2 Command Status-change Notification',
  'source': 'aws.ssm',
  'account': '123456789012',
  'time': '2016-07-10T21:51:32Z',
  'region': 'us-east-1',
  'resources': ['arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111'],
  'detail': {
    'command-id': 'e8d3c0e4-71f7-4491-898f-c9b35bee5f3b',
    'document-name': 'AWS-RunPowerShellScript',
    'expire-after': '2016-07-14T22:01:30.049Z',
    'parameters': { executionTimeout: ['3600'], commands: ['date'] },
    'requested-date-time': '2016-07-10T21:51:30.049Z',
    'status': 'Success',
  },
};

/** State Manager Instance Association State Change, as documented (one per node and status). */
export const DOCUMENTED_INSTANCE_ASSOCIATION: Event = {
  'version': '0',
  'id': '6a7e8feb-b491-4cf7-a9f1-bf3703467718',
  'detail-type': 'EC2 State Manager Instance Association State Change',
  'source': 'aws.ssm',
  'account': '123456789012',
  'time': '2017-02-23T15:23:48Z',
  'region': 'us-east-1',
  'resources': [
    'arn:aws:ec2:us-east-1:123456789012:instance/i-12345678',
    'arn:aws:ssm:us-east-1:123456789012:document/my-custom-document',
  ],
  'detail': {
    'association-id': '34fcb7e0-9a14-4984-9989-0e04e3f60bd8',
    'instance-id': 'i-12345678',
    'document-name': 'my-custom-document',
    'document-version': '1',
    'targets': '[{"key":"instanceids","values":["i-12345678"]}]',
    'creation-date': '2017-02-23T15:23:48Z',
    'last-successful-execution-date': '2017-02-23T16:23:48Z',
    'last-execution-date': '2017-02-23T16:23:48Z',
    'status': 'Success',
    'detailed-status': '',
    'error-code': 'testErrorCode',
    'execution-summary': 'testExecutionSummary',
    'output-url': 'sampleurl',
    'instance-association-cwe-version': '1',
  },
};

/** State Manager Association State Change (the whole association), as documented. */
export const DOCUMENTED_ASSOCIATION: Event = {
  'version': '0',
  'id': 'db839caf-6f6c-40af-9a48-25b2ae2b7774',
  'detail-type': 'EC2 State Manager Association State Change',
  'source': 'aws.ssm',
  'account': '123456789012',
  'time': '2017-05-16T23:01:10Z',
  'region': 'us-west-1',
  'resources': ['arn:aws:ssm:us-west-1::document/AWS-RunPowerShellScript'],
  'detail': {
    'association-id': '6e37940a-23ba-4ab0-9b96-5d0a1a05464f',
    'document-name': 'AWS-RunPowerShellScript',
    'association-version': '1',
    'document-version': 'Optional.empty',
    'targets': '[{"key":"InstanceIds","values":["i-12345678"]}]',
    'creation-date': '2017-02-13T17:22:54.458Z',
    'last-successful-execution-date': '2017-05-16T23:00:01Z',
    'last-execution-date': '2017-05-16T23:00:01Z',
    'last-updated-date': '2017-02-13T17:22:54.458Z',
    'status': 'Success',
    'association-status-aggregated-count': '{"Success":1}',
    'schedule-expression': 'cron(0 */30 * * * ? *)',
    'association-cwe-version': '1.0',
  },
};

/** A documented event with some `detail` fields changed. */
export function withDetail(event: Event, changes: { [key: string]: string }): Event {
  return { ...event, detail: { ...(event.detail as { [key: string]: any }), ...changes } };
}

/** One event per (name, event, whether the status-events rule of a stack whose document is `documentName` must match it). */
export function statusEventTable(documentName: string, associationId: string): Array<[string, Event, boolean]> {
  const ours = { 'document-name': documentName };
  const invocation = (status: string) => withDetail(DOCUMENTED_INVOCATION, { ...ours, status });
  const instanceAssociation = (status: string) => withDetail(DOCUMENTED_INSTANCE_ASSOCIATION, { ...ours, 'association-id': associationId, status });
  return [
    ['the documented invocation event (another document)', DOCUMENTED_INVOCATION, false],
    ['the documented instance association event (another document)', DOCUMENTED_INSTANCE_ASSOCIATION, false],
    ['invocation of our document: Success', invocation('Success'), true],
    ['invocation of our document: Failed', invocation('Failed'), true],
    ['invocation of our document: TimedOut', invocation('TimedOut'), true],
    ['invocation of our document: Cancelled', invocation('Cancelled'), true],
    ['invocation of our document: a final status the guide does not list (Undeliverable)', invocation('Undeliverable'), true],
    ['invocation of our document: Pending (not final)', invocation('Pending'), false],
    ['invocation of our document: InProgress (not final)', invocation('InProgress'), false],
    ['invocation of our document: Delayed (not final)', invocation('Delayed'), false],
    ['invocation of our document: Cancelling (not final)', invocation('Cancelling'), false],
    ['invocation of a document whose name starts with ours', withDetail(DOCUMENTED_INVOCATION, { 'document-name': `${documentName}-copy`, 'status': 'Success' }), false],
    ['invocation of our document from another source', { ...invocation('Success'), source: 'custom.ssm' }, false],
    ['instance association of our document: Success', instanceAssociation('Success'), true],
    ['instance association of our document: Failed', instanceAssociation('Failed'), true],
    ['instance association of our document: Pending (not final)', instanceAssociation('Pending'), false],
    ['instance association of another document', withDetail(DOCUMENTED_INSTANCE_ASSOCIATION, { status: 'Failed' }), false],
    ['the whole command (EC2 Command Status-change Notification) of our document', withDetail(DOCUMENTED_COMMAND, { ...ours, status: 'Failed' }), false],
    ['the whole association (EC2 State Manager Association State Change) of our document', withDetail(DOCUMENTED_ASSOCIATION, { ...ours, 'association-id': associationId }), false],
    ['document-name in lower case', withDetail(DOCUMENTED_INVOCATION, { 'document-name': documentName.toLowerCase(), 'status': 'Success' }), documentName.toLowerCase() === documentName],
  ];
}
