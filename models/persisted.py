"""Persisted operations: GraphQL documents registered under their SHA-256 (Apollo's
automatic persisted queries), shared by every process on the database."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class PersistedQuery(Base):
    __tablename__ = "persisted_queries"

    # Lowercase hex SHA-256 of the document's UTF-8 bytes.
    sha256: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    document: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime]
