"""The report's decisions, on a recorded run (`testdata/run`, a small
`scripts/bench` run kept with BENCH_KEEP_WORK): each target's verdict follows
the figures, the commands printed are the ones recorded as run, and a new page
keeps the sections other scripts recorded.

    PYTHONPATH=scripts python3 -m unittest benchkit.test_report
"""
import json
import os
import re
import shutil
import tempfile
import unittest

from benchkit import report

RUN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "testdata", "run")


class RecordedRun:
    """A copy of the recorded run that a test may change."""

    def __init__(self):
        self.folder = tempfile.mkdtemp(prefix="bench-report-")
        self.work = os.path.join(self.folder, "run")
        shutil.copytree(RUN, self.work)

    def close(self):
        shutil.rmtree(self.folder, ignore_errors=True)

    def change(self, name, **figures):
        path = os.path.join(self.work, "results", name + ".json")
        with open(path) as f:
            result = json.load(f)
        result.update(figures)
        with open(path, "w") as f:
            json.dump(result, f)

    def set_syncs(self, name, count):
        with open(os.path.join(self.work, "results", name + ".syncs"), "w") as f:
            f.write(f"{count}\n")

    def page(self):
        return report.render(self.work, "swift build -c release", 60, "15")


def verdict(page, target_start):
    """The verdict cell of the Targets row whose first cell starts with `target_start`."""
    section = page.split("## Targets", 1)[1].split("\n## ", 1)[0]
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0].startswith(target_start):
            return cells[-1]
    raise AssertionError(f"no target row starting with {target_start!r} in:\n{section}")


class ReportTests(unittest.TestCase):
    def setUp(self):
        self.run = RecordedRun()
        self.addCleanup(self.run.close)

    def test_the_recorded_run_renders_every_section_it_has_figures_for(self):
        page = self.run.page()
        for title in ["## Throughput", "## Durable writes", "## Durability probe", "## HTTPS: HTTP/2 beside HTTP/1.1",
                      "## Held long-polls beside the streams", "## Targets", "## Commands"]:
            self.assertIn(title, page)

    def test_the_latency_target_follows_the_p99(self):
        streams = {"streams_connected": 10000, "streams_expected": 10000}
        self.run.change("10k-payment-status", latency_p99_ms=0.8, **streams)
        self.assertEqual(verdict(self.run.page(), "p99 push latency at most 1 ms"), "**met**")
        self.run.change("10k-payment-status", latency_p99_ms=1.2, **streams)
        self.assertEqual(verdict(self.run.page(), "p99 push latency at most 1 ms"), "**not met**")

    def test_fewer_than_ten_thousand_streams_measure_no_latency_target(self):
        self.run.change("10k-payment-status", latency_p99_ms=0.1, streams_connected=9999)
        self.assertEqual(verdict(self.run.page(), "p99 push latency at most 1 ms"), "–")

    def test_writes_without_enough_syncs_are_not_durable(self):
        self.run.change("writes-payment-status", transitions_per_s=50000)
        self.assertEqual(verdict(self.run.page(), "at least 10,000 durable transitions per second"), "**met**")
        self.run.set_syncs("writes-probe-payment-status", 0)
        page = self.run.page()
        self.assertEqual(verdict(page, "at least 10,000 durable transitions per second"), "**not met**")
        self.assertIn("not durable as measured", page)

    def test_the_long_poll_memory_target_follows_the_figure(self):
        target = "at most 10 KB of server RSS per held long-poll"
        held = {"streams_connected": 10000, "streams_expected": 10000, "delivered": 20000, "delivered_expected": 20000}
        self.run.change("longpoll-payment-status", rss_per_idle_stream_bytes=9.5 * 1024, **held)
        self.assertEqual(verdict(self.run.page(), target), "**met**")
        self.run.change("longpoll-payment-status", rss_per_idle_stream_bytes=10.5 * 1024)
        self.assertEqual(verdict(self.run.page(), target), "**not met**")
        self.run.change("longpoll-payment-status", rss_per_idle_stream_bytes=2 * 1024, delivered=19999)
        self.assertEqual(verdict(self.run.page(), target), "**not met**")
        self.run.change("longpoll-payment-status", streams_connected=9000)
        self.assertEqual(verdict(self.run.page(), target), "–")

    def test_the_connect_rate_target_takes_the_best_scenario(self):
        self.run.change("10k-payment-status", connect_rate=6500.0)
        self.run.change("throughput-payment-status", connect_rate=100.0)
        self.assertEqual(verdict(self.run.page(), "at least 6,000 new streams/s"), "**met**")
        self.run.change("10k-payment-status", connect_rate=5999.0)
        self.assertEqual(verdict(self.run.page(), "at least 6,000 new streams/s"), "**not met**")

    def test_the_commands_printed_are_the_ones_recorded_as_run(self):
        page = self.run.page()
        commands = page.split("## Commands", 1)[1]
        with open(os.path.join(self.run.work, "commands.txt")) as f:
            recorded = [line.rstrip("\n").split("\t") for line in f if line.strip()]
        self.assertTrue(recorded)
        for scenario, system, start, tool in recorded:
            self.assertIn(tool, commands, f"{scenario} {system}")
            if scenario != "probe":
                self.assertIn(start, commands, f"{scenario} {system}")

    def test_the_figures_in_the_tables_are_the_recorded_ones(self):
        with open(os.path.join(self.run.work, "results", "throughput-payment-status.json")) as f:
            throughput = json.load(f)
        page = self.run.page()
        row = next(line for line in page.split("## Throughput", 1)[1].splitlines() if line.startswith("| payment-status"))
        self.assertIn(f"{throughput['transitions_per_s']:,.0f}", row)
        self.assertIn(f'{throughput["delivered"]:,}/{throughput["delivered_expected"]:,}', row)

    def test_the_machine_load_is_given_when_the_run_recorded_it(self):
        self.assertNotIn("load average", self.run.page())
        with open(os.path.join(self.run.work, "load.txt"), "w") as f:
            f.write("start\t7.30 7.53 7.71\nend\t2.10 5.00 6.90\n")
        line = next(l for l in self.run.page().splitlines() if "load average" in l)
        self.assertIn("at the start: 7.30 7.53 7.71; at the end: 2.10 5.00 6.90", line)

    def test_a_new_page_keeps_the_marked_sections_of_the_old_one(self):
        previous = "# old\n\n<!-- backup-bench:start -->\nbackup figures\n<!-- backup-bench:end -->\n\n" \
                   "text\n<!-- feed-bench:start -->\nfeed figures\n<!-- feed-bench:end -->\n"
        merged = report.merge("# Benchmarks\n\nnew\n", previous)
        self.assertTrue(merged.startswith("# Benchmarks\n\nnew"))
        self.assertEqual(re.findall(r"<!-- ([a-z-]+):start -->", merged), ["backup-bench", "feed-bench"])
        self.assertIn("backup figures", merged)
        self.assertIn("feed figures", merged)
        self.assertNotIn("# old", merged)


if __name__ == "__main__":
    unittest.main()
