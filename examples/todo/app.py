"""A small Flask app used by the README quickstart and the end-to-end tests.

Run it with FLASK_APP=examples/todo/app.py (or ``flask --app``); the database
is a SQLite file in the instance folder unless DATABASE_URL is set.
"""

import os

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_migrate_alt import Migrate

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ.get(
    "DATABASE_URL", "sqlite:///" + os.path.join(app.instance_path, "todo.db")
)
# Flask-SQLAlchemy 2.x warns on every command unless this is set.
app.config["SQLALCHEMY_TRACK_MODIFICATIONS"] = False
os.makedirs(app.instance_path, exist_ok=True)

db = SQLAlchemy(app)
migrate = Migrate(app, db)


class Todo(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    title = db.Column(db.String(200), nullable=False)
    done = db.Column(db.Boolean, nullable=False, default=False)
