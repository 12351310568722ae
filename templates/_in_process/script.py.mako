<%!
from mako.template import Template
%>${Template(filename=config.get_section_option("flask_migrate_alt", "script_template")).render_unicode(**context.kwargs)}