"""`convlens tour`: steps run in order, the index links only reports that exist."""
import re

import pytest

from convlens.errors import ConvlensError
from convlens.tour import run_tour


def test_tour_basics_step_writes_a_linked_report(tmp_path, shared_data):
    index = run_tour(tmp_path / "tour", steps="basics", shared_data=str(shared_data))
    html = index.read_text()
    assert "62,378,344" in html and "61,100,840" in html
    links = re.findall(r"href='([^']+)'", html)
    assert links and all((index.parent / link).is_file() for link in links)
    page = (index.parent / links[0]).read_text()
    assert "Conv-1" in page and page.count("data:image/png;base64,") >= 5  # the five convolution demos


def test_unknown_step_is_a_clear_error(tmp_path):
    with pytest.raises(ConvlensError, match="unknown step 'resnet'"):
        run_tour(tmp_path / "tour", steps="basics,resnet")
