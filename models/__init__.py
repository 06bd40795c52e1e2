"""SQLAlchemy models: the tables Numbra keeps. Import from here."""

from models.base import Base
from models.organizations import Organization, OrganizationKind
from models.series import Series
from models.tokens import Role, Token

__all__ = ["Base", "Organization", "OrganizationKind", "Role", "Series", "Token"]
