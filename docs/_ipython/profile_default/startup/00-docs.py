"""Run in every kernel that executes the site's notebooks (docs/build.py sets IPYTHONDIR).

Warnings print as "Category: message", without the file path of the line that raised them
(which would put the build machine's paths on the site), and tqdm's note that ipywidgets are
missing (progress bars in Jupyter) is not shown.
"""

import warnings

warnings.formatwarning = lambda message, category, *args, **kwargs: f"{category.__name__}: {message}\n"
warnings.filterwarnings("ignore", message="IProgress not found")
