"""A flag's page in a real browser: on/off, the sliders, users, groups, data, delete, history,
and changes made elsewhere appearing without a reload."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Locator, Page, Route, expect

from rollout.testing import eventually

from .browser_helpers import PATIENCE, Dashboard, dashboard, launch_chromium, not_reloaded


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch_chromium()


@pytest.fixture
def board() -> Iterator[Dashboard]:
    with dashboard() as served:
        yield served


@pytest.fixture
def page(browser: Browser, board: Dashboard) -> Iterator[Page]:
    opened = board.open(browser, "/flags/chat")
    yield opened
    opened.context.close()


def latest_history(page: Page) -> Locator:
    return page.locator("#history .history > li").first


def test_setting_percentages_with_the_sliders(page: Page, board: Dashboard) -> None:
    flags = board.flags
    slider = page.get_by_role("slider", name="Percentage of users")
    slider.scroll_into_view_if_needed()
    box = slider.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] * 0.6, box["y"] + box["height"] / 2)
    value = float(slider.input_value())
    assert 45 <= value <= 75  # wherever the thumb landed, the flag follows it exactly
    eventually(lambda: flags.get("chat").percentage == value, PATIENCE, f"percentage {value}")
    expect(page.locator(".flag-head .badge")).to_have_text(f"partial {value:g}%")
    expect(page.get_by_role("spinbutton", name="Percentage of users, exact")).to_have_value(
        f"{value:g}"
    )
    expect(latest_history(page)).to_contain_text(f"percentage of users: 20% → {value:g}%")
    expect(latest_history(page)).to_contain_text("alice")

    # The exact box, for what a slider cannot hit.
    exact = page.get_by_role("spinbutton", name="Percentage of users, exact")
    exact.fill("12.5")
    exact.press("Enter")
    eventually(lambda: flags.get("chat").percentage == 12.5, PATIENCE, "percentage 12.5")
    expect(page.locator(".flag-head .badge")).to_have_text("partial 12.5%")
    # The live update can come before the write's own answer: wait for its notice, or it would
    # arrive after the refusal's below and replace it.
    expect(page.locator("#notice")).to_have_text("percentage of users: 12.5%")
    exact.fill("150")
    exact.press("Enter")
    expect(page.locator("#notice")).to_contain_text("from 0 to 100")
    expect(exact).to_have_value("12.5")
    assert flags.get("chat").percentage == 12.5

    # Keys: each press is a change; the value they settle on is sent.
    time_slider = page.get_by_role("slider", name="Percentage of time")
    time_slider.focus()
    for _ in range(3):
        time_slider.press("ArrowRight")
    eventually(lambda: flags.get("chat").percentage_of_time == 3, PATIENCE, "3% of the time")
    expect(page.locator('[data-field="summary"]')).to_contain_text("3% of the time")


def test_typing_while_an_earlier_change_is_answered_keeps_what_was_typed(
    page: Page, board: Dashboard
) -> None:
    """The answer to the slider's change must not put back the number being typed meanwhile."""
    flags = board.flags
    held: list[Route] = []

    def hold(route: Route) -> None:
        held.append(route)

    page.route("**/api/v1/flags/chat/percentage*", hold)
    slider = page.get_by_role("slider", name="Percentage of users")
    exact = page.get_by_role("spinbutton", name="Percentage of users, exact")
    slider.focus()
    with page.expect_request(lambda request: request.method == "PUT"):
        slider.press("ArrowRight")  # 21%, sent after the keys settle; its answer is held
    exact.fill("12.5")  # typed before that answer arrives
    held[0].continue_()
    page.unroute("**/api/v1/flags/chat/percentage*", hold)
    eventually(lambda: flags.get("chat").percentage == 21, PATIENCE, "percentage 21")
    expect(page.locator("#notice")).to_have_text("percentage of users: 21%")
    expect(exact).to_have_value("12.5")
    exact.press("Enter")
    eventually(lambda: flags.get("chat").percentage == 12.5, PATIENCE, "percentage 12.5")
    expect(exact).to_have_value("12.5")


def test_partial_is_its_own_state_and_everybody_or_nobody_asks_first(
    page: Page, board: Dashboard
) -> None:
    flags = board.flags
    states = page.get_by_role("group", name="Who gets chat")
    on, off = (states.get_by_role("button", name=n) for n in ("On for everybody", "Off"))
    partial = states.locator('[data-field="partial"]')
    # 20% and two listed users: partial, saying why; neither "on" nor "off" is pressed.
    expect(partial).to_have_attribute("data-current", "true")
    expect(partial).to_have_text("Partial: 20% of users · 2 users · groups admins")
    expect(on).to_have_attribute("aria-pressed", "false")
    expect(off).to_have_attribute("aria-pressed", "false")

    dialog = page.get_by_role("dialog")
    on.click()
    expect(dialog).to_contain_text("Turn chat on for everybody?")
    expect(dialog).to_contain_text("Today it is on for 20%, 2 users and group admins.")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert flags.get("chat").percentage == 20  # cancelled: nothing sent
    expect(partial).to_have_attribute("data-current", "true")

    on.click()
    dialog.get_by_role("button", name="Turn on for everybody").click()
    expect(on).to_have_attribute("aria-pressed", "true")
    expect(page.locator(".flag-head .badge")).to_have_text("on")
    assert flags.get("chat").percentage == 100

    off.click()
    expect(dialog).to_contain_text("Turn chat off for everybody?")
    dialog.get_by_role("button", name="Cancel").click()
    assert flags.active("chat")
    off.click()
    dialog.get_by_role("button", name="Turn off").click()
    expect(off).to_have_attribute("aria-pressed", "true")
    expect(page.locator('[data-ids="users"] .chips li')).to_have_count(0)
    assert not flags.active("chat", "42")

    on.click()  # off to everybody asks too
    expect(dialog).to_contain_text("Today it is off.")
    dialog.get_by_role("button", name="Cancel").click()
    assert not flags.active("chat")


def test_adding_pasting_and_removing_users(page: Page, board: Dashboard) -> None:
    flags = board.flags
    users = page.locator('[data-ids="users"]')
    box = page.get_by_label("Add users")
    box.fill("alice-id")
    box.press("Enter")
    expect(users.locator(".chips li")).to_have_count(3)
    assert flags.get("chat").users == {"42", "7", "alice-id"}
    expect(box).to_have_value("")

    # Pasting many: commas and new lines separate, blanks and repeats are dropped.
    box.fill("1, 2\n3\n\n2,")
    users.get_by_role("button", name="Add", exact=True).click()
    eventually(
        lambda: flags.get("chat").users == {"42", "7", "alice-id", "1", "2", "3"}, PATIENCE, "6"
    )
    expect(users.locator('[data-field="count"]')).to_have_text("6")

    page.get_by_role("button", name="Remove user 2", exact=True).click()
    expect(page.get_by_role("button", name="Remove user 2", exact=True)).to_have_count(0)
    assert "2" not in flags.get("chat").users

    box.fill("1\n3")
    users.get_by_role("button", name="Remove these").click()
    eventually(
        lambda: flags.get("chat").users == {"42", "7", "alice-id"}, PATIENCE, "1 and 3 removed"
    )
    expect(latest_history(page)).to_contain_text("removed user 1")
    expect(latest_history(page)).to_contain_text("removed user 3")
    expect(latest_history(page)).to_contain_text("alice")

    excluded = page.get_by_label("Add excluded users")
    excluded.fill("666, 667")
    excluded.press("Enter")
    eventually(lambda: flags.get("chat").excluded_users == {"666", "667"}, PATIENCE, "two excluded")
    expect(page.get_by_role("button", name="Remove excluded user 666")).to_be_visible()
    expect(page.locator('[data-field="summary"]')).to_contain_text("2 excluded")


def test_the_notice_and_history_count_what_changed_not_what_was_sent(
    page: Page, board: Dashboard
) -> None:
    flags = board.flags
    users = page.locator('[data-ids="users"]')
    box = page.get_by_label("Add users")
    box.fill("42, 8")  # 42 is listed already
    box.press("Enter")
    expect(page.locator("#notice")).to_have_text("Added 1 users (1 listed already).")
    eventually(lambda: flags.get("chat").users == {"42", "7", "8"}, PATIENCE, "8 added")
    expect(latest_history(page)).to_contain_text("added user 8")
    expect(latest_history(page)).not_to_contain_text("user 42")
    events = len(flags.history("chat"))

    box.fill("8, 99")  # 99 was never listed
    users.get_by_role("button", name="Remove these").click()
    expect(page.locator("#notice")).to_have_text("Removed 1 users (1 not listed).")
    expect(latest_history(page)).to_contain_text("removed user 8")
    expect(latest_history(page)).not_to_contain_text("99")

    box.fill("42, 7")  # nothing to add: no event
    box.press("Enter")
    expect(page.locator("#notice")).to_have_text("Added 0 users (2 listed already).")
    assert len(flags.history("chat")) == events + 1


def test_groups_defined_ones_offered_and_others_added(page: Page, board: Dashboard) -> None:
    flags = board.flags
    expect(page.get_by_role("checkbox", name="admins")).to_be_checked()
    expect(page.get_by_role("checkbox", name="staff")).not_to_be_checked()
    page.get_by_role("checkbox", name="all").check()
    eventually(lambda: flags.get("chat").groups == {"admins", "all"}, PATIENCE, "all added")
    page.get_by_role("checkbox", name="admins").uncheck()
    eventually(lambda: flags.get("chat").groups == {"all"}, PATIENCE, "admins removed")
    # A group only the services define (not this process) is typed in.
    page.get_by_label("Other group").fill("beta_testers")
    page.get_by_role("button", name="Add group").click()
    eventually(
        lambda: flags.get("chat").groups == {"all", "beta_testers"}, PATIENCE, "beta_testers"
    )
    expect(page.get_by_role("checkbox", name="beta_testers")).to_be_checked()
    expect(latest_history(page)).to_contain_text("added group beta_testers")


def test_editing_data_as_json(page: Page, board: Dashboard) -> None:
    flags = board.flags
    editor = page.get_by_label("Data (a JSON object)")
    save = page.get_by_role("button", name="Save data")
    editor.fill('{"owner": ')
    expect(page.locator("#data-error")).to_contain_text("Not valid JSON")
    expect(editor).to_have_attribute("aria-invalid", "true")
    expect(save).to_be_disabled()
    editor.fill("[1, 2]")
    expect(page.locator("#data-error")).to_have_text(
        'The data must be a JSON object, like {"owner": "web"}.'
    )
    # "description" deleted in the editor, "owner" changed, "ticket" new.
    editor.fill('{"owner": "mobile", "ticket": 7}')
    expect(page.locator("#data-error")).to_have_text("")
    save.click()
    eventually(
        lambda: dict(flags.get("chat").data) == {"owner": "mobile", "ticket": 7}, PATIENCE, "saved"
    )
    assert flags.history("chat")[0].action == "replace_feature_data"  # one write, not two
    expect(page.locator('[data-field="description"]')).to_have_text("")
    page.get_by_role("button", name="Clear data").click()
    page.get_by_role("dialog").get_by_role("button", name="Clear data").click()
    eventually(lambda: dict(flags.get("chat").data) == {}, PATIENCE, "cleared")
    expect(editor).to_have_value("{}")


def test_deleting_asks_first(page: Page, board: Dashboard) -> None:
    page.get_by_role("button", name="Delete flag…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Delete chat?")
    dialog.get_by_role("button", name="Cancel").click()
    assert board.flags.exists("chat")
    page.get_by_role("button", name="Delete flag…").click()
    dialog.get_by_role("button", name="Delete", exact=True).click()
    expect(page).to_have_url(board.url + "/")
    expect(page.locator("tbody tr th a")).to_have_text(["beta", "old_search", "signup"])
    assert not board.flags.exists("chat")
    event = board.flags.history("chat")[0]
    assert (event.action, event.actor) == ("delete", "alice")


def test_changes_made_elsewhere_show_up_live(page: Page, board: Dashboard) -> None:
    api, flags = board.api, board.flags
    assert api.put("/flags/chat/percentage", json={"percentage": 40}).status_code == 200
    expect(page.get_by_role("slider", name="Percentage of users")).to_have_value("40")
    expect(page.locator(".flag-head .badge")).to_have_text("partial 40%")
    expect(latest_history(page)).to_contain_text("ci")
    assert api.post("/flags/chat/users", json={"users": ["from-api"]}).status_code == 200
    expect(page.get_by_role("button", name="Remove user from-api")).to_be_visible()
    with flags.with_context(user="carol"):
        flags.activate_group("chat", "staff")
        flags.set_feature_data("chat", {"owner": "payments"})
    expect(page.get_by_role("checkbox", name="staff")).to_be_checked()
    expect(page.get_by_label("Data (a JSON object)")).to_have_value(
        re.compile('"owner": "payments"')
    )
    expect(latest_history(page)).to_contain_text("carol")
    # Deleted elsewhere: the page says so, and keeps the history.
    assert api.delete("/flags/chat").status_code == 200
    expect(page.get_by_text("There is no flag with this name")).to_be_visible()
    expect(page.locator(".flag-head .badge")).to_have_text("off")
    expect(latest_history(page)).to_contain_text("delete")
    assert not_reloaded(page)


def test_an_edit_in_progress_is_not_overwritten(page: Page, board: Dashboard) -> None:
    editor = page.get_by_label("Data (a JSON object)")
    editor.fill('{"owner": "mine"}')
    board.flags.set_feature_data("chat", {"owner": "theirs"})
    expect(page.locator("#data-error")).to_have_text(
        "The data was changed elsewhere while you were editing it."
    )
    expect(editor).to_have_value('{"owner": "mine"}')
    page.get_by_role("button", name="Save data").click()
    eventually(lambda: board.flags.get("chat").data.get("owner") == "mine", PATIENCE, "mine saved")
