"""What the prediction command writes for people and tools: COCO pre-annotations that read back exactly, and
report.html, checked in a real browser (Debian's chromium, headless, driven by its chromedriver)."""

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from Utilities.Coco_export import COCO_PREDICTIONS, coco_predictions
from Utilities.Data_source import one_hot
from Utilities.Formats import open_source
from Utilities.Inference import Predictor
from Utilities.Predict_folder import output_paths, predict_folder
from Utilities.Review_page import REVIEW_PAGE, write_review_page

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def test_coco_predictions_read_back_exactly_as_the_label_masks(tmp_path):
    labels = np.zeros((20, 30), np.uint8)
    labels[2:9, 2:9] = 1
    labels[4:6, 4:6] = 0  # a hole
    labels[2:9, 9:12] = 2  # touching a region of the other class
    labels[15, 20:29] = 1  # a second pit, one pixel high
    labels[19, 29] = 2  # a corner pixel
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((20, 30, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "a_mask.png"), labels)
    cv2.imwrite(str(tmp_path / "clean.png"), np.zeros((20, 30, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "clean_mask.png"), np.zeros((20, 30), np.uint8))
    document = coco_predictions([{"file_name": "a.png", "mask": tmp_path / "a_mask.png", "scores": [0.9, 0.7]},
                                 {"file_name": "clean.png", "mask": tmp_path / "clean_mask.png", "scores": [0.1, 0.2]}],
                                ("pit", "scratch"))
    assert [(a["category_id"], a["score"], a["area"]) for a in document["annotations"]] == [
        (1, 0.9, 45), (1, 0.9, 9), (2, 0.7, 21), (2, 0.7, 1)]
    assert document["annotations"][0]["bbox"] == [2.0, 2.0, 7.0, 7.0]
    (tmp_path / COCO_PREDICTIONS).write_text(json.dumps(document))
    source = open_source("coco", tmp_path)
    assert source.classes == ("pit", "scratch") and source.check().errors == []
    np.testing.assert_array_equal(source.mask(source.sample("a.png"), 20, 30), one_hot(labels, 2))
    assert source.sample("clean.png").label == "free"


def test_the_prediction_command_coco_file_reads_back_as_its_masks(tmp_path):
    from test_predict_folder import make_checkpoint, noise

    (tmp_path / "in").mkdir()
    for i in range(3):
        cv2.imwrite(str(tmp_path / "in" / f"{i}.png"), noise(40, 48, i))
    predictor = Predictor(make_checkpoint(tmp_path / "model.pth"), threshold=0.5)
    predict_folder(predictor, tmp_path / "in", tmp_path / "out", coco=True)
    document = json.loads((tmp_path / "out" / COCO_PREDICTIONS).read_text())
    assert [image["file_name"] for image in document["images"]] == ["0.png", "1.png", "2.png"]
    assert document["annotations"], "a random model at threshold 0.5 predicts some regions"
    shutil.copy(tmp_path / "out" / COCO_PREDICTIONS, tmp_path / "in")
    source = open_source("coco", tmp_path / "in", classes=predictor.classes)
    assert len(source.samples()) == 3 and source.check().errors == []
    for sample in source.samples():
        labels = cv2.imread(str(output_paths(tmp_path / "out", sample.image)[0]), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(source.mask(sample, 40, 48), one_hot(labels, len(predictor.classes)))


# --- report.html in a browser ---------------------------------------------------------------


@pytest.fixture
def browser():
    assert CHROMIUM and CHROMEDRIVER, ("the review page test needs Debian's chromium and chromium-driver: "
                                       "apt-get install chromium chromium-driver (.ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900",
                     "--allow-file-access-from-files"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def visible_cards(driver) -> list:
    return driver.find_elements("css selector", "#grid .card")


def test_review_page_shows_filters_and_opens_a_prediction_run(tmp_path, browser):
    from selenium.webdriver.support.ui import Select
    from test_predict_folder import make_checkpoint, mixed_folder, noise

    broken = mixed_folder(tmp_path / "in")
    odd = tmp_path / "in" / """odd "name" <b>&amp; #1 é.png"""  # quotes, markup, an entity, # and a non-ASCII letter
    odd.write_bytes(cv2.imencode(".png", noise(30, 30, 9))[1].tobytes())
    predictor = Predictor(make_checkpoint(tmp_path / "model.pth"), threshold=0.5)
    report = predict_folder(predictor, tmp_path / "in", tmp_path / "out")
    page = tmp_path / "out" / REVIEW_PAGE
    assert len(list((tmp_path / "out" / "thumbs").glob("*.jpg"))) == (report["status"] == "ok").sum() == 6
    browser.get(page.as_uri())
    cards = visible_cards(browser)
    assert len(cards) == 9 and browser.find_element("id", "shown").text == "9 of 9"
    assert str(odd) in [c.get_attribute("title") for c in cards] and not browser.find_elements("css selector", "#grid b")
    probabilities = [float(c.text.split("p ")[1].split()[0]) for c in cards if "failed" not in c.get_attribute("class")]
    assert probabilities == sorted(probabilities, reverse=True)
    assert all(browser.execute_script("return arguments[0].naturalWidth", img) > 0
               for img in browser.find_elements("css selector", "#grid img")), "every thumbnail loads"

    Select(browser.find_element("id", "status")).select_by_value("failed")
    assert len(visible_cards(browser)) == len(broken) == 3
    assert browser.current_url.endswith("#status=failed")
    assert sorted(browser.find_element("id", "failures").text.splitlines()[1:]) == sorted(
        f"{tmp_path / 'in' / name} {reason}" for name, reason in broken.items())
    Select(browser.find_element("id", "status")).select_by_value("")
    defect_class = next(c for c in predictor.classes if (report[f"area_{c}"].fillna(0) > 0).any())
    Select(browser.find_element("id", "class")).select_by_value(defect_class)
    assert len(visible_cards(browser)) == (report[f"area_{defect_class}"].fillna(0) > 0).sum()

    visible_cards(browser)[0].click()
    detail = browser.find_element("id", "detail")
    assert "open" in detail.get_attribute("class")
    assert [i.get_attribute("alt") for i in detail.find_elements("css selector", "img")] == ["overlay", "mask"]
    assert "max probability" in detail.text and defect_class in detail.text
    browser.save_screenshot(str(tmp_path / "detail.png"))
    shot = cv2.imread(str(tmp_path / "detail.png"))
    assert shot.shape[1] == 1280
    assert shot.std() > 10, "the screenshot shows something"


def test_review_page_of_thousands_draws_them_as_it_scrolls(tmp_path, browser):
    classes = ("crack",)
    rows = []
    for i in range(3000):
        image = Path(f"/data/{i:05d}.jpg")
        overlay = output_paths(tmp_path, image)[1]
        cv2.imwrite(str(overlay), np.full((8, 8, 3), i % 255, np.uint8))
        rows.append({"file": str(image), "status": "ok", "reason": "", "height": 8, "width": 8, "defect": i % 2,
                     "area_crack": i % 2 * 10, "max_probability_crack": (i % 997) / 997})
    write_review_page(pd.DataFrame(rows), classes, tmp_path, lambda image: output_paths(tmp_path, image))
    browser.get((tmp_path / REVIEW_PAGE).as_uri() + "#status=defect")
    assert browser.find_element("id", "shown").text == "1500 of 3000"
    assert len(visible_cards(browser)) == 200
    from selenium.webdriver.support.ui import WebDriverWait

    browser.execute_script("window.scrollTo(0, document.body.scrollHeight)")
    WebDriverWait(browser, 10).until(lambda driver: len(visible_cards(driver)) >= 400)
    probabilities = [float(c.text.split("p ")[1].split()[0]) for c in visible_cards(browser)]
    assert probabilities == sorted(probabilities, reverse=True)
