import { fail, isUnresolved } from './validation';

/** Longest EC2 tag key usable here: Run Command target keys are `tag:<key>` and at most 128 characters. */
const MAX_TAG_KEY_LENGTH = 124;
const MAX_TAG_VALUE_LENGTH = 256;
/** Run Command targets and association targets accept at most 50 values for one tag key. */
const MAX_TAG_VALUES = 50;
/** Characters SSM accepts in a target key (RunCommandTargets and association Targets). */
const TAG_KEY_CHARS = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]+$/u;
/** Characters EC2 accepts in tag values. */
const TAG_VALUE_CHARS = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]+$/u;

/**
 * Which EC2 instances (worker nodes) receive the images.
 *
 * A selector is one EC2 tag key with one or more accepted values, the only form
 * that both Run Command targets and State Manager association targets accept.
 */
export class NodeSelector {
  /**
   * Instances whose EC2 tag `key` has one of `values`.
   *
   * @param key the EC2 tag key, for example `eks:nodegroup-name`
   * @param values accepted values of the tag (1 to 50)
   */
  public static tag(key: string, ...values: string[]): NodeSelector {
    return new NodeSelector(key, values);
  }

  /**
   * Every node of an EKS cluster: managed node groups, self-managed nodes and Karpenter
   * nodes alike, which all carry the tag `kubernetes.io/cluster/<clusterName>` = `owned`.
   *
   * @param clusterName the cluster name; may be a Token such as `cluster.clusterName`
   */
  public static eksCluster(clusterName: string): NodeSelector {
    if (!isUnresolved(clusterName) && !/^[0-9A-Za-z][A-Za-z0-9\-_]{0,99}$/.test(clusterName)) {
      fail('nodes', 'an EKS cluster name must be 1-100 letters, digits, hyphens or underscores and start with a letter or digit', clusterName);
    }
    return new NodeSelector(`kubernetes.io/cluster/${clusterName}`, ['owned']);
  }

  /**
   * The nodes of EKS managed node groups (tag `eks:nodegroup-name`).
   *
   * @param nodeGroupNames names of the node groups (1 to 50)
   */
  public static eksNodeGroup(...nodeGroupNames: string[]): NodeSelector {
    return new NodeSelector('eks:nodegroup-name', nodeGroupNames);
  }

  /**
   * The nodes Karpenter launches for node pools (tag `karpenter.sh/nodepool`).
   *
   * @param nodePoolNames names of the Karpenter NodePools (1 to 50)
   */
  public static karpenterNodePool(...nodePoolNames: string[]): NodeSelector {
    return new NodeSelector('karpenter.sh/nodepool', nodePoolNames);
  }

  /** The EC2 tag key the nodes carry. */
  public readonly tagKey: string;

  /** The accepted values of the tag. */
  public readonly tagValues: string[];

  private constructor(key: string, values: string[]) {
    if (!isUnresolved(key)) {
      if (key.length < 1 || key.length > MAX_TAG_KEY_LENGTH) {
        fail('nodes', `a tag key must be 1-${MAX_TAG_KEY_LENGTH} characters (Run Command target keys are "tag:<key>", at most 128)`, key);
      }
      if (!TAG_KEY_CHARS.test(key)) {
        fail('nodes', 'a tag key may contain only letters, digits, spaces and _ . : / = + - @', key);
      }
    }
    if (values.length === 0) {
      fail('nodes', `a selector needs at least one tag value for the key "${key}"`, values);
    }
    const unique = Array.from(new Set(values));
    if (unique.length > MAX_TAG_VALUES) {
      fail('nodes', `a selector accepts at most ${MAX_TAG_VALUES} tag values (the limit of Run Command and association targets)`, unique.length);
    }
    for (const value of unique) {
      if (isUnresolved(value)) continue;
      if (value.length < 1 || value.length > MAX_TAG_VALUE_LENGTH) {
        fail('nodes', `a tag value must be 1-${MAX_TAG_VALUE_LENGTH} characters`, value);
      }
      if (!TAG_VALUE_CHARS.test(value)) {
        fail('nodes', 'a tag value may contain only letters, digits, spaces and _ . : / = + - @', value);
      }
    }
    this.tagKey = key;
    this.tagValues = unique;
  }

  /** The key as SSM targets spell it. */
  public get targetKey(): string {
    return `tag:${this.tagKey}`;
  }
}
