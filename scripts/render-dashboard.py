"""Draws docs/dashboard.png, the README's picture of the dashboard, from the SYNTHESIZED dashboard body.

    python scripts/render-dashboard.py <body.json> <out.png>     (scripts/render-dashboard.sh runs it)

Every widget is drawn where the body puts it (x, y, width, height on CloudWatch's 24-column grid),
with its title, view, stacking, labels and colours, and every metric, math expression and Logs Insights
query in the body is given a series: nothing is drawn that the body does not name, and a metric the
simulation does not know stops the script. The data come from a small simulation of a realistic day
(not from an account): 1,000 nodes, a push every 15 to 45 minutes (about 50 a day), SSM's
1-2-4-... dispatch ramp, the nodes' random jitter (90 s), pull times from a log-normal fitted to the
README's benchmark (1 GB in about 8 s), a few full disks and failing nodes, one throttling burst,
Karpenter nodes joining, and two stopped nodes that time out after the hour of delivery timeout.
"""
from __future__ import annotations

import json
import math
import random
import re
import sys
from collections import defaultdict

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

BIN = 300                       # the widgets' period (5 minutes)
HOURS = 6
BINS = HOURS * 3600 // BIN
NODES = 1000
START = '09:00'
RNG = random.Random(13)


# --------------------------------------------------------------------------------------------
# The simulated fleet: per node and push, when it finished and with which outcome.

def simulate():
    series = defaultdict(lambda: [0.0] * BINS)     # (metric, key) -> value per bin
    pull_seconds = defaultdict(list)               # bin -> seconds of the pulled nodes
    not_succeeded = []                             # rows of the failed-nodes table
    instance_ids = [f'i-0{RNG.getrandbits(64):016x}' for _ in range(NODES)]
    full_disks = set(RNG.sample(range(NODES), 3))
    bad_role = RNG.randrange(NODES)                # a node whose role lost ECR access
    stopped = set(RNG.sample(range(NODES), 2))     # stopped nodes: Delivery Timed Out after 1 h

    def add(metric, key, t, value=1.0):
        b = int(t // BIN)
        if 0 <= b < BINS:
            series[(metric, key)][b] += value

    push_times = []
    t = RNG.uniform(300, 900)
    while t < HOURS * 3600 - 600:
        push_times.append(t)
        t += RNG.uniform(15, 45) * 60
    throttled_push = push_times[len(push_times) // 2]
    for p in push_times:
        add('push', 'matched', p)
        add('push', 'started', p + 1)
        command = f'{RNG.getrandbits(128):032x}'
        command = f'{command[:8]}-{command[8:12]}-{command[12:16]}-{command[16:20]}-{command[20:]}'
        for n in range(NODES):
            # SSM's ramp: 1, 2, 4, ... nodes, each wave a second or two after the previous one.
            wave = int(math.log2(n + 1))
            start = p + 1.5 * wave + RNG.uniform(0, 90)
            if n in stopped:
                add('status', 'TimedOut', p + 3600)
                not_succeeded.append((p + 3600, instance_ids[n], 'TimedOut', command, ''))
                continue
            seconds = RNG.lognormvariate(math.log(8.4), 0.45)
            if n == bad_role:
                outcome, seconds = 'auth-failed', 1.2
            elif n in full_disks:
                outcome, seconds = 'skipped-disk', 0.6
            elif p == throttled_push and RNG.random() < 0.012:
                outcome, seconds = 'registry-failed', 38.0 + RNG.uniform(0, 20)
            elif RNG.random() < 0.004:
                outcome, seconds = 'skipped-locked', 15.0
            elif RNG.random() < 0.01:
                outcome, seconds = 'present', 0.3
            else:
                outcome = 'pulled'
            end = start + seconds
            add('outcome', outcome, end)
            failed = outcome in ('auth-failed', 'registry-failed')
            add('status', 'Failed' if failed else 'Success', end)
            if failed:
                not_succeeded.append((end, instance_ids[n], 'Failed', command, ''))
            if outcome == 'pulled':
                pull_seconds[int(end // BIN)].append(seconds)
    # Karpenter adds nodes in bursts; each runs the association once (the newest image: pulled).
    for _ in range(int(HOURS * 1.5)):
        burst = RNG.uniform(0, HOURS * 3600)
        for _ in range(RNG.randint(2, 12)):
            end = burst + RNG.uniform(60, 200)
            ok = RNG.random() > 0.03
            add('join', 'Success' if ok else 'Failed', end)
            if not ok:
                not_succeeded.append((end, f'i-0{RNG.getrandbits(64):016x}', 'Failed', '', '0b2c3d4e-5f60-4718-8a9b-0c1d2e3f4a5b'))
    return series, pull_seconds, sorted((row for row in not_succeeded if row[0] < HOURS * 3600), reverse=True)


SERIES, PULL_SECONDS, NOT_SUCCEEDED = simulate()


def metric_series(entry) -> list[float]:
    """The simulated values of one metric line of the body: [namespace, name, dim, value, ..., {options}]."""
    namespace, name = entry[0], entry[1]
    dims = dict(zip(entry[2:-1:2], entry[3:-1:2])) if isinstance(entry[-1], dict) else dict(zip(entry[2::2], entry[3::2]))
    if (namespace, name) == ('AWS/Events', 'MatchedEvents'):
        return SERIES[('push', 'matched')]
    if (namespace, name) == ('AWS/States', 'ExecutionsStarted'):
        return SERIES[('push', 'started')]
    if (namespace, name) in {('AWS/States', 'ExecutionsFailed'), ('AWS/Events', 'InvocationsSentToDlq'),
                             ('AWS/SQS', 'ApproximateNumberOfMessagesVisible')}:
        return [0.0] * BINS
    if (namespace, name) == ('CdkImagePrefetcher', 'CommandNodes'):
        return SERIES[('status', dims['Status'])]
    if (namespace, name) == ('CdkImagePrefetcher', 'AssociationNodes'):
        return SERIES[('join', dims['Status'])]
    if namespace.startswith('CdkImagePrefetcher/'):
        return SERIES[('outcome', name)]
    raise SystemExit(f'the simulation has no data for the metric {namespace} {name} {dims}')


def metric_lines(properties):
    """(label, colour, values) of every visible line of a metric widget, math expressions evaluated."""
    by_id, lines = {}, []
    for entry in properties['metrics']:
        options = entry[-1] if isinstance(entry[-1], dict) else {}
        if 'expression' in options:
            continue
        values = metric_series(entry)
        if 'id' in options:
            by_id[options['id']] = values
        if options.get('visible', True):
            lines.append((options.get('label', entry[1]), options.get('color'), values))
    for entry in properties['metrics']:
        options = entry[-1] if isinstance(entry[-1], dict) else {}
        expression = options.get('expression')
        if expression is None:
            continue
        m = re.fullmatch(r'SUM\(\[([a-z0-9,]+)\]\)', expression)
        if not m:
            raise SystemExit(f'math expression not modelled: {expression}')
        ids = m.group(1).split(',')
        lines.append((options.get('label', expression), options.get('color'),
                      [sum(by_id[i][b] for i in ids) for b in range(BINS)]))
    return lines


# --------------------------------------------------------------------------------------------
# Drawing, on CloudWatch's grid.

UNIT_W, UNIT_H = 0.62, 0.42       # inches per grid column and row
PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2']


def ticks():
    h0, m0 = map(int, START.split(':'))
    positions = list(range(0, BINS + 1, 12))
    return positions, [f'{(h0 + p * BIN // 3600) % 24:02d}:{m0:02d}' for p in positions]


def panel(fig, widget, total_h):
    x, y, w, h = widget['x'], widget['y'], widget['width'], widget['height']
    pad = 0.06
    left, bottom = (x + pad) / 24, 1 - (y + h - pad) / total_h
    width, height = (w - 2 * pad) / 24, (h - 2 * pad) / total_h
    fig.patches.append(FancyBboxPatch((left, bottom), width, height, boxstyle='round,pad=0,rounding_size=0.004',
                                      transform=fig.transFigure, facecolor='white', edgecolor='#d5dbdb', linewidth=0.8, zorder=-1))
    return left, bottom, width, height


def draw_metric(fig, widget, total_h):
    left, bottom, width, height = panel(fig, widget, total_h)
    p = widget['properties']
    ax = chart_axes(fig, left, bottom, width, height, total_h)
    fig.text(left + 0.006, bottom + height - 0.012, p['title'], fontsize=9.5, fontweight='bold', va='top', color='#16191f')
    lines = metric_lines(p)
    xs = list(range(BINS))
    colours = [c or PALETTE[i % len(PALETTE)] for i, (_, c, _) in enumerate(lines)]
    if p.get('stacked'):
        ax.stackplot(xs, *[v for _, _, v in lines], colors=colours, labels=[label for label, _, _ in lines], alpha=0.85)
    else:
        for (label, _, values), colour in zip(lines, colours):
            ax.plot(xs, values, label=label, color=colour, linewidth=1.3)
    style(ax, p.get('yAxis', {}).get('left', {}))
    ax.legend(loc='upper center', bbox_to_anchor=(0.5, -0.16), ncol=min(4, len(lines)), fontsize=7, frameon=False, handlelength=1.2)


def chart_axes(fig, left, bottom, width, height, total_h):
    """The plot area inside a panel: room for the title above, the ticks and the legend below."""
    fw, fh = 24 * UNIT_W, total_h * UNIT_H
    l, r, t, b = 0.45 / fw, 0.15 / fw, 0.38 / fh, 0.62 / fh
    return fig.add_axes([left + l, bottom + b, width - l - r, height - t - b])


def style(ax, y_axis):
    positions, labels = ticks()
    ax.set_xticks(positions, labels, fontsize=7)
    ax.tick_params(axis='y', labelsize=7)
    ax.set_xlim(0, BINS - 1)
    if 'min' in y_axis:
        ax.set_ylim(bottom=y_axis['min'])
    top = ax.get_ylim()[1]
    if top < 1:
        ax.set_ylim(top=1)
    for side in ('top', 'right'):
        ax.spines[side].set_visible(False)
    ax.grid(axis='y', color='#eaeded', linewidth=0.6)


def draw_log(fig, widget, total_h):
    left, bottom, width, height = panel(fig, widget, total_h)
    p = widget['properties']
    fig.text(left + 0.006, bottom + height - 0.012, p['title'], fontsize=9.5, fontweight='bold', va='top', color='#16191f')
    query = p['query']
    if p.get('view') == 'table':
        fields = re.search(r'fields (.*)', query).group(1)
        columns = [c.strip().split(' as ')[-1].strip('`') for c in fields.split(',')]
        limit = int(re.search(r'limit (\d+)', query).group(1))
        ax = fig.add_axes([left + 0.004, bottom + 0.01, width - 0.008, height - 0.05])
        ax.axis('off')
        h0, m0 = map(int, START.split(':'))
        rows = []
        for t, instance, status, command, association in NOT_SUCCEEDED[:min(limit, 9)]:
            minutes = h0 * 60 + m0 + int(t // 60)
            rows.append([f'2026-11-30 {minutes // 60 % 24:02d}:{minutes % 60:02d}:{int(t % 60):02d}', instance, status,
                         command or '-', association or '-'])
        table = ax.table(cellText=rows, colLabels=columns, loc='upper left', cellLoc='left', colLoc='left',
                         colWidths=[0.15, 0.18, 0.08, 0.3, 0.26])
        table.auto_set_font_size(False)
        table.set_fontsize(6.8)
        table.scale(1, 1.18)
        for (r, _), cell in table.get_celld().items():
            cell.set_edgecolor('#eaeded')
            if r == 0:
                cell.set_text_props(fontweight='bold')
                cell.set_facecolor('#f2f3f3')
        return
    # A line chart of the query's stats, by bin: the pull seconds' percentiles per 5 minutes.
    stats = re.search(r'stats (.*) by bin\((\d+)m\)', query)
    if not stats or int(stats.group(2)) * 60 != BIN:
        raise SystemExit(f'log query not modelled: {query}')
    percentiles = [(int(q), name) for q, name in re.findall(r'pct\(seconds, (\d+)\) as (\w+)', stats.group(1))]
    ax = chart_axes(fig, left, bottom, width, height, total_h)
    for i, (q, name) in enumerate(percentiles):
        xs, ys = [], []
        for b in range(BINS):
            values = sorted(PULL_SECONDS.get(b, []))
            if values:
                xs.append(b)
                ys.append(values[min(len(values) - 1, int(math.ceil(q / 100 * len(values))) - 1)])
        ax.plot(xs, ys, 'o-', markersize=2.5, linewidth=1.2, label=name, color=PALETTE[i])
    style(ax, {'min': 0})
    ax.legend(loc='upper center', bbox_to_anchor=(0.5, -0.16), ncol=len(percentiles), fontsize=7, frameon=False)


def draw_text(fig, widget, total_h):
    left, bottom, width, height = panel(fig, widget, total_h)
    lines = widget['properties']['markdown'].split('\n')
    fig.text(left + 0.006, bottom + height - 0.012, lines[0].lstrip('# '), fontsize=12, fontweight='bold', va='top', color='#16191f')
    for i, line in enumerate(lines[1:]):
        fig.text(left + 0.006, bottom + height - 0.05 - 0.025 * i, line, fontsize=8.5, va='top', color='#545b64')


def main():
    body_path, out = sys.argv[1], sys.argv[2]
    with open(body_path, encoding='utf-8') as f:
        widgets = json.load(f)['widgets']
    total_h = max(w['y'] + w['height'] for w in widgets)
    fig = plt.figure(figsize=(24 * UNIT_W, total_h * UNIT_H), dpi=110)
    fig.patch.set_facecolor('#f2f3f3')
    for widget in widgets:
        {'metric': draw_metric, 'log': draw_log, 'text': draw_text}[widget['type']](fig, widget, total_h)
    fig.savefig(out, facecolor=fig.get_facecolor())
    print(f'{len(widgets)} widgets drawn into {out}')


if __name__ == '__main__':
    main()
