import functools
import http.server
import shutil
import threading

import pytest
from conftest import make_neu_like

from Utilities.Setup_data import setup_data
from Utilities.Validate_data import DataError


@pytest.fixture
def source(tmp_path):
    return make_neu_like(tmp_path / "download", per_class=2, size=32)


def test_copy_from_a_folder_and_run_again(source, tmp_path):
    project = tmp_path / "project"
    copied, report = setup_data(source, project)
    assert (report.images, report.annotations, copied) == (12, 12, 24)
    assert setup_data(source, project)[0] == 0  # already there
    assert not (project / "IMAGES").is_symlink()


def test_images_held_out_are_not_copied_back(source, tmp_path):
    project = tmp_path / "project"
    setup_data(source, project)
    (project / "Validation_Images").mkdir()
    (project / "Validation_Annotations").mkdir()
    shutil.move(project / "IMAGES" / "crazing_1.jpg", project / "Validation_Images" / "crazing_1.jpg")
    shutil.move(project / "ANNOTATIONS" / "crazing_1.xml", project / "Validation_Annotations" / "crazing_1.xml")
    copied, report = setup_data(source, project)
    assert copied == 0 and not (project / "IMAGES" / "crazing_1.jpg").exists()
    assert report.images == 12 and not report.errors  # the held-out image is a sample too, where it now lies


def test_download_an_archive_from_a_url(source, tmp_path):
    archive = shutil.make_archive(str(tmp_path / "serve" / "NEU-DET"), "zip", source.parent, source.name)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "serve"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{archive.rsplit('/', 1)[1]}"
        _, report = setup_data(url, tmp_path / "project")
    finally:
        server.shutdown()
    assert (report.images, report.annotations) == (12, 12)


def test_problems_are_named(source, tmp_path):
    (source / "ANNOTATIONS" / "patches_1.xml").unlink()
    (source / "IMAGES" / "scratches_2.jpg").write_bytes(b"truncated")
    with pytest.raises(DataError) as error:
        setup_data(source, tmp_path / "project")
    message = str(error.value)
    assert "patches_1.jpg: no annotation" in message
    assert "scratches_2.jpg: unreadable or truncated" in message


def test_missing_source_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        setup_data(tmp_path / "nowhere", tmp_path / "project")


def test_other_formats_keep_their_layout_and_lose_an_archive_top_folder(tmp_path):
    from test_formats import make_magnetic_tile

    from Utilities.Setup_data import setup_dataset

    make_magnetic_tile(tmp_path / "download" / "Magnetic-Tile-master")
    archive = shutil.make_archive(str(tmp_path / "mt"), "zip", tmp_path / "download")
    copied, report = setup_dataset("magnetic_tile", archive, tmp_path / "data" / "mt")
    assert copied == 20 and report.images == 10 and report.errors == []
    assert (tmp_path / "data" / "mt" / "MT_Free" / "Imgs" / "exp0.png").exists()
    assert setup_dataset("magnetic_tile", archive, tmp_path / "data" / "mt")[0] == 0
    (tmp_path / "data" / "mt" / "MT_Crack" / "Imgs" / "exp0.png").unlink()
    (tmp_path / "download" / "Magnetic-Tile-master" / "MT_Crack" / "Imgs" / "exp0.png").unlink()
    with pytest.raises(DataError, match="exp0.jpg: no annotation"):
        setup_dataset("magnetic_tile", tmp_path / "download", tmp_path / "data" / "mt")
