"""Every row of THREATS.md (the attacks and failures ScanScribe must survive) has named tests.

The map below is the index the README's security section points to. This test fails when a
named test is renamed or removed, so the index cannot quietly go stale.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from config import PROJECT_ROOT as ROOT

THREAT_TESTS: dict[int, list[str]] = {
    1: [
        "test_threats_scan.py::test_hostile_input_is_refused_inside_an_empty_network_namespace",
        "test_profiles.py::test_argv_ends_with_double_dash_then_numeric_addresses_only",
    ],
    2: [
        "test_profiles.py::test_no_output_file_or_script_options_except_the_fixed_ones",
        "test_profiles.py::test_ports_replace_the_profile_selection_as_one_element",
    ],
    3: ["test_runner.py::test_nmap_errors_stay_in_the_log"],
    4: [
        "test_targets.py::test_addresses_outside_the_scope_are_refused",
        "test_targets.py::test_a_name_with_any_address_outside_the_scope_is_refused",
        "test_targets.py::test_ranges_that_expand_beyond_a_narrow_scope_are_refused",
        "test_targets.py::test_the_address_cap_is_enforced_without_expanding_networks",
        "test_runner.py::test_ipv6_loopback_is_scanned_with_dash_six",
    ],
    5: ["test_targets.py::test_bad_port_specs_are_refused"],
    6: [
        "test_runner.py::test_the_wall_clock_limit_kills_the_scan",
        "test_parser.py::test_timed_out_hosts_are_flagged_not_clean",
        "test_scan_cli.py::test_timed_out_hosts_never_read_as_clean",
    ],
    7: [
        "test_runner.py::test_progress_env_and_cancel_of_a_running_scan",
        "test_runner.py::test_shutdown_kills_running_scans",
        "test_runner.py::test_jobs_of_a_killed_app_are_interrupted_and_nmap_killed",
        "test_scan_cli.py::test_a_signal_cancels_the_job_and_kills_nmap",
    ],
    8: ["test_runner.py::test_concurrent_scans_never_mix_results"],
    9: [
        "test_import.py::test_hostile_file_is_refused_and_nothing_is_stored",
        "test_parser.py::test_billion_laughs_is_refused",
        "test_parser.py::test_external_entity_is_refused_without_echo",
    ],
    10: [
        "test_e2e_browser.py::test_scan_report_diff_summarize_compare_and_outages",
        "test_mdsafe.py::test_links_images_html_entities_and_directives_are_neutralised",
        "test_export.py::test_html_escapes_scan_data_and_summaries",
        "test_summarize_browser.py::test_summary_streams_renders_inert_and_stops_in_chromium",
        "test_reports_browser.py::test_script_ids_and_versions_from_a_file_never_become_links",
        "test_ui_text.py::test_labels_break_every_autolink_and_link",
    ],
    11: [
        "test_prompt.py::test_injection_banner_reaches_the_model_fenced_as_data",
        "test_factcheck.py::test_planted_fabrications_are_flagged_and_true_facts_are_not",
    ],
    12: [
        "test_llm_client.py::test_server_down_says_how_to_start_it",
        "test_llm_client.py::test_stall_becomes_a_timeout_not_a_hang",
        "test_llm_client.py::test_dropped_connection_becomes_stream_broken",
        "test_summarize.py::test_mid_stream_error_keeps_partial_text_marked_failed",
    ],
    13: [
        "test_firestore.py::test_unreachable_firestore_fails_within_seconds",
        "test_firestore.py::test_summary_saved_twice_by_a_retry_stays_one_document",
        "test_firestore.py::test_outage_keeps_every_write_and_syncs_once_back",
        "test_firestore.py::test_report_too_big_for_one_document_saves_and_reads_back",
    ],
    14: [
        "test_runner.py::test_progress_env_and_cancel_of_a_running_scan",
        "test_threat_coverage.py::test_secrets_file_is_ignored_by_git",
        "test_threat_coverage.py::test_no_secret_reaches_the_command_line_output",
    ],
    15: [
        "test_team_browser.py::test_every_page_fails_closed_when_exposed_without_a_login",
        "test_auth.py::test_foreign_host_header_stops_the_dashboard_over_http",
        "test_auth.py::test_dashboard_asks_for_the_password_before_any_page",
        "test_auth.py::test_deep_link_to_a_page_still_asks_for_the_password",
    ],
    16: [
        "test_scan_cli.py::test_missing_nmap_exits_1_with_the_install_command",
        "test_shell_pages.py::test_status_says_how_to_install_nmap_when_it_is_missing",
        "test_targets.py::test_refusals_name_the_token_and_the_rule",
    ],
    17: [
        "test_runner.py::test_jobs_of_a_killed_app_are_interrupted_and_nmap_killed",
        "test_llm_cli.py::test_kill_9_mid_summary_keeps_the_partial_text_marked_interrupted",
        "test_sqlite_store.py::test_kill_9_during_a_big_save_leaves_no_half_record",
    ],
    18: [
        "test_team_browser.py::test_every_page_fails_closed_when_exposed_without_a_login",
        "test_team_browser.py::test_exposed_dashboard_without_login_shows_no_report_data",
        "test_team_access.py::test_a_broken_users_file_never_starts_an_open_dashboard",
    ],
    19: [
        "test_team_access.py::test_user_commands_manage_accounts_and_refuse_bad_input",
        "test_team_access.py::test_a_role_change_or_removal_takes_effect_on_the_next_action",
    ],
    20: [
        "test_team_access.py::test_every_action_is_refused_for_a_viewer_with_nothing_changed",
        "test_team_access.py::test_analysts_cancel_their_own_scans_and_admins_anyones",
        "test_team_browser.py::test_a_viewer_reads_reports_without_controls_and_stays_logged_in",
    ],
    21: [
        "test_team_access.py::test_twenty_parallel_wrong_guesses_get_only_the_free_attempts_evaluated",
        "test_team_access.py::test_the_wait_doubles_with_each_failure_and_a_success_clears_only_its_account",
    ],
    22: [
        "test_script_egress.py::test_no_profile_selects_a_script_that_reaches_past_the_target",
        "test_script_egress.py::test_default_and_safe_alone_selects_the_scripts_that_reach_out",
        "test_script_egress.py::test_version_detection_drops_the_probe_that_sends_proxies_to_google",
        "test_script_egress.py::test_the_lab_catches_the_old_safe_scripts_sending_the_target_outside",
        "test_script_egress.py::test_a_scan_asks_in_scope_servers_for_nothing_outside_the_scope",
        "test_profiles.py::test_a_version_profile_without_the_scoped_probe_file_is_never_built",
    ],
    23: [
        "test_hostile_fields.py::test_a_protocol_nmap_never_writes_refuses_the_file_and_stores_nothing",
        "test_hostile_fields.py::test_markdown_export_renders_no_link_image_or_tag_from_scan_data",
        "test_hostile_fields.py::test_html_export_has_no_tag_or_attribute_from_scan_data",
        "test_hostile_fields.py::test_no_csv_cell_can_start_a_formula",
        "test_exports_browser.py::test_exports_opened_in_chromium_fetch_nothing",
    ],
    24: [
        "test_prompt_fields.py::test_a_line_break_in_a_report_field_stays_inside_its_quotes",
        "test_prompt_fields.py::test_a_line_break_in_a_diff_field_stays_inside_its_quotes",
        "test_prompt_fields.py::test_a_status_or_port_state_that_is_not_nmaps_never_opens_a_line",
    ],
    25: [
        "test_parser.py::test_a_file_in_another_encoding_is_decoded_correctly",
        "test_parser.py::test_an_unusable_encoding_is_refused_naming_it",
        "test_import.py::test_an_unusable_encoding_is_refused_and_nothing_is_stored",
        "test_import.py::test_cli_refuses_an_unusable_encoding_with_exit_2",
    ],
    26: [
        "test_parser.py::test_a_file_of_tiny_elements_is_refused_before_it_outgrows_memory",
        "test_parser.py::test_one_element_over_the_limit_is_refused",
        "test_import.py::test_a_file_too_big_for_free_memory_is_refused_before_it_is_read",
    ],
    27: [
        "test_runner_outage.py::test_a_scan_outlives_a_lock_held_past_the_busy_timeout_and_the_next_job_runs",
        "test_runner_outage.py::test_a_job_end_the_store_refuses_for_long_is_kept_and_saved_later",
        "test_firestore_machines.py::test_a_scan_rides_out_a_killed_firestore_and_its_report_lands",
        "test_firestore.py::test_a_record_that_cannot_be_sent_is_parked_and_blocks_nothing",
    ],
    28: [
        "test_recovery_machines.py::test_another_machines_job_is_left_alone_and_no_local_group_is_signalled",
        "test_recovery_machines.py::test_a_job_from_an_earlier_boot_is_interrupted_and_no_group_is_signalled",
        "test_recovery_machines.py::test_summaries_are_recovered_only_by_their_own_machine_and_boot",
        "test_firestore_machines.py::test_machine_b_leaves_machine_as_live_jobs_and_summaries_alone",
        "test_firestore_machines.py::test_a_stale_copy_from_another_process_never_overwrites_a_newer_one",
    ],
    29: [
        "test_monitor_alerts.py::test_an_opened_port_is_posted_signed_with_hostile_text_kept_as_inert_data",
        "test_monitor_alerts.py::test_the_alert_email_has_the_same_facts_escaped_and_defanged",
        "test_monitor_alerts.py::test_failed_posts_are_retried_with_every_attempt_recorded",
        "test_monitor_alerts.py::test_an_undeliverable_alert_is_kept_and_sent_when_the_receiver_is_back",
        "test_monitor_alerts.py::test_an_smtp_password_is_never_sent_without_tls",
        "test_monitor_pages.py::test_an_alert_with_hostile_scan_text_renders_inert_and_can_be_marked_read",
    ],
    30: [
        "test_workers.py::test_celery_app_accepts_json_and_nothing_else",
        "test_workers.py::test_a_pickled_task_is_refused_and_runs_nothing",
        "test_workers.py::test_a_queued_message_is_json_with_ids_and_validated_values_never_an_argv",
        "test_workers.py::test_broker_url_needs_a_password_and_is_never_shown_with_it",
        "test_workers.py::test_a_worker_refuses_a_forged_task_outside_its_own_scope",
        "test_workers.py::test_sites_in_their_own_namespaces_scan_only_their_own_hosts",
    ],
    31: [
        "test_pdf_report.py::test_urls_and_markup_in_a_report_never_make_the_pdf_fetch_anything",
        "test_pdf_report.py::test_the_pdf_has_a_cover_the_checked_summary_findings_and_an_appendix",
    ],
    # The project's own rows (docs/threats.md).
    32: [
        "test_llm_cli.py::test_control_characters_from_the_model_never_reach_the_terminal",
        "test_import.py::test_control_characters_in_a_file_name_are_stored_visible",
        "test_reports_cli.py::test_show_on_a_terminal_never_lets_a_banner_rewrite_the_lines_shown",
    ],
    33: [
        "test_monitor_smtp_tls.py::test_alert_mail_goes_through_tls_with_the_login_inside_it",
        "test_monitor_smtp_tls.py::test_a_certificate_from_an_unknown_authority_is_refused_and_says_what_to_set",
        "test_monitor_smtp_tls.py::test_a_certificate_for_another_host_is_refused",
        "test_monitor_alerts.py::test_an_smtp_password_is_never_sent_without_tls",
    ],
}


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        n.name
        for n in ast.walk(tree)
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name.startswith("test_")
    }


def test_every_threat_row_has_tests_that_exist() -> None:
    # The shared list (when it is beside the project) and the project's own rows.
    lists = (ROOT.parent / "shared" / "THREATS.md", ROOT / "docs" / "threats.md")
    expected = set(range(1, 18))
    for source in (p for p in lists if p.is_file()):
        expected |= {
            int(line.split("|")[1])
            for line in source.read_text().splitlines()
            if line.startswith("| ") and line.split("|")[1].strip().isdigit()
        }
    assert {32, 33} <= expected, "docs/threats.md lost its rows"
    assert set(THREAT_TESTS) >= expected
    missing = []
    for row, names in THREAT_TESTS.items():
        assert names, f"row {row} has no test"
        for name in names:
            file, func = name.split("::")
            if func not in _test_names(ROOT / "tests" / file):
                missing.append(f"row {row}: {name}")
    assert missing == []


def test_secrets_file_is_ignored_by_git() -> None:
    out = subprocess.run(
        ["git", "check-ignore", "-q", ".streamlit/secrets.toml"], cwd=ROOT, check=False
    )
    assert out.returncode == 0, ".streamlit/secrets.toml must be git-ignored"
    assert (ROOT / ".streamlit" / "secrets.toml.example").is_file()


@pytest.mark.nmap
def test_no_secret_reaches_the_command_line_output(tmp_path: Path) -> None:
    """Settings exported from secrets.toml stay out of what the CLI prints and logs."""
    secret = "s3cr3t-value-that-must-not-leak"
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "SCANSCRIBE_DB": str(tmp_path / "s.db"),
        "SCANSCRIBE_PASSWORD_HASH": "scrypt$16384$8$1$" + secret,
        "FIREBASE_API_KEY": secret,
        "OLLAMA_HOST": "http://127.0.0.1:9",
    }
    out = subprocess.run(
        [sys.executable, "-m", "scanner", "scan", "--profile", "quick", "--ports", "9",
         "--format", "json", "--", "127.0.0.1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert secret not in out.stdout and secret not in out.stderr
