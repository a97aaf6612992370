import { Token } from 'aws-cdk-lib';
import { NodeSelector } from '../src';

describe('NodeSelector', () => {
  test('tag() keeps the key and the values, without duplicates', () => {
    const selector = NodeSelector.tag('eks:nodegroup-name', 'gpu-a', 'gpu-b', 'gpu-a');
    expect(selector.tagKey).toBe('eks:nodegroup-name');
    expect(selector.tagValues).toEqual(['gpu-a', 'gpu-b']);
    expect(selector.targetKey).toBe('tag:eks:nodegroup-name');
  });

  test('eksCluster() selects every node of the cluster by the kubernetes.io/cluster tag', () => {
    const selector = NodeSelector.eksCluster('ml-cluster');
    expect(selector.tagKey).toBe('kubernetes.io/cluster/ml-cluster');
    expect(selector.tagValues).toEqual(['owned']);
  });

  test('eksNodeGroup() and karpenterNodePool() use the tags EKS and Karpenter put on nodes', () => {
    expect(NodeSelector.eksNodeGroup('a', 'b').tagKey).toBe('eks:nodegroup-name');
    expect(NodeSelector.karpenterNodePool('gpu').tagKey).toBe('karpenter.sh/nodepool');
    expect(NodeSelector.karpenterNodePool('gpu').tagValues).toEqual(['gpu']);
  });

  test('Tokens are not validated at synth', () => {
    const name = Token.asString({ Ref: 'ClusterName' });
    expect(() => NodeSelector.eksCluster(name)).not.toThrow();
    expect(() => NodeSelector.tag(Token.asString({ Ref: 'Key' }), Token.asString({ Ref: 'Value' }))).not.toThrow();
  });

  test('50 values are accepted', () => {
    const values = Array.from({ length: 50 }, (_, i) => `v${i}`);
    expect(NodeSelector.tag('k', ...values).tagValues).toHaveLength(50);
  });

  test.each([
    ['an empty key', () => NodeSelector.tag('', 'v'), '`nodes`: a tag key must be 1-124 characters (Run Command target keys are "tag:<key>", at most 128), got: ""'],
    ['a key over 124 characters', () => NodeSelector.tag('k'.repeat(125), 'v'), `\`nodes\`: a tag key must be 1-124 characters (Run Command target keys are "tag:<key>", at most 128), got: "${'k'.repeat(125)}"`],
    ['a key with a forbidden character', () => NodeSelector.tag('team*', 'v'), '`nodes`: a tag key may contain only letters, digits, spaces and _ . : / = + - @, got: "team*"'],
    ['no values', () => NodeSelector.tag('team'), '`nodes`: a selector needs at least one tag value for the key "team", got: []'],
    ['more than 50 values', () => NodeSelector.tag('k', ...Array.from({ length: 51 }, (_, i) => `v${i}`)), '`nodes`: a selector accepts at most 50 tag values (the limit of Run Command and association targets), got: 51'],
    ['an empty value', () => NodeSelector.tag('k', ''), '`nodes`: a tag value must be 1-256 characters, got: ""'],
    ['a value over 256 characters', () => NodeSelector.tag('k', 'v'.repeat(257)), `\`nodes\`: a tag value must be 1-256 characters, got: "${'v'.repeat(257)}"`],
    ['a value with a forbidden character', () => NodeSelector.tag('k', 'a;b'), '`nodes`: a tag value may contain only letters, digits, spaces and _ . : / = + - @, got: "a;b"'],
    ['an invalid cluster name', () => NodeSelector.eksCluster('-bad'), '`nodes`: an EKS cluster name must be 1-100 letters, digits, hyphens or underscores and start with a letter or digit, got: "-bad"'],
    ['an empty cluster name', () => NodeSelector.eksCluster(''), '`nodes`: an EKS cluster name must be 1-100 letters, digits, hyphens or underscores and start with a letter or digit, got: ""'],
    ['no node group', () => NodeSelector.eksNodeGroup(), '`nodes`: a selector needs at least one tag value for the key "eks:nodegroup-name", got: []'],
    ['no node pool', () => NodeSelector.karpenterNodePool(), '`nodes`: a selector needs at least one tag value for the key "karpenter.sh/nodepool", got: []'],
  ])('refuses %s', (_name, make, message) => {
    expect(make).toThrow(message);
  });
});
